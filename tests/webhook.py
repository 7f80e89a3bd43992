"""A webhook on loopback for the notification tests: it keeps every JSON body it accepts."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

TOKEN_PATH = "/services/T000/B000/not-a-real-token"  # shaped like a Slack incoming webhook


class Webhook(ThreadingHTTPServer):
    """Answers every POST with `status`; keeps the bodies of those it answers with 200."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[dict] = []
        self.status = 200
        self.arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{TOKEN_PATH}"

    def wait_for(self, needle: str, timeout_s: float) -> dict:
        """The first post whose text holds `needle`, waiting up to `timeout_s` for it."""
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while time.monotonic() < deadline:
                for post in self.posts:
                    if needle in post.get("text", ""):
                        return post
                self.arrived.wait(0.5)
        pytest.fail(f"no post naming {needle!r} in {timeout_s} s; got {self.posts}")


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        hook: Webhook = self.server  # type: ignore[assignment]
        with hook.arrived:
            if hook.status == 200:
                hook.posts.append({"path": self.path, **json.loads(body or b"{}")})
            hook.arrived.notify_all()
        self.send_response(hook.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass
