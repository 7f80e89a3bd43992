"""`vectorflow up` / `vectorflow down`: the whole system on one machine.

`up` starts a Prefect server on 127.0.0.1 (analytics off), creates the process work pool, deploys
prefect.yaml and starts a worker (`--workers N`: N of them on the pool), then prints the UI's
URL. The server keeps its database where `PREFECT_API_DATABASE_CONNECTION_URL` says (PostgreSQL
for many workers), else in SQLite under PREFECT_HOME. What it started is recorded in
`<data dir>/run/stack.json`; `down` (or Ctrl-C on a foreground `up`) stops exactly those
processes and nothing else. The same steps with plain `prefect` commands are in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from vectorflow.cli import INVALID, OK, command_parser, prefect_environment
from vectorflow.cli.notifications import configure_notifications, webhook_host
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput

POOL = "vectorflow"


def repo_root() -> Path:
    """The checkout holding prefect.yaml and flows/ (deployments run from there)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "prefect.yaml").exists() or not (root / "flows").is_dir():
        raise InvalidInput(
            f"no prefect.yaml next to {root}: `vectorflow up` runs from a clone of the repository"
        )
    return root


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def stack_environment(api_url: str, data_dir: Path, root: Path) -> dict[str, str]:
    """Environment of the server, the deploy step and the worker (and so of every flow run)."""
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        VECTORFLOW_HOME=str(root),
        VECTORFLOW_DATA_DIR=str(data_dir),
    )
    return env


def _wait_healthy(api_url: str, server: subprocess.Popen, timeout_s: float) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {server.returncode}")
        try:
            if requests.get(f"{api_url}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the Prefect server at {api_url} was not healthy after {timeout_s:.0f} s")


def _start(cmd: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as sink:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"prefect" in cmdline


def server_database(env: dict[str, str]) -> str:
    """The Prefect server's database as `up` prints it (a password in the URL masked)."""
    url = env.get("PREFECT_API_DATABASE_CONNECTION_URL") or env.get(
        "PREFECT_SERVER_DATABASE_CONNECTION_URL"
    )
    if not url:
        return "SQLite under PREFECT_HOME (set PREFECT_API_DATABASE_CONNECTION_URL for PostgreSQL)"
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def stack_file(data_dir: Path) -> Path:
    """Where `up` records what it started."""
    return data_dir / "run" / "stack.json"


def read_stack(state_file: Path) -> dict:
    """What `up` recorded ({} when nothing is, or the file cannot be read)."""
    try:
        return json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}


def live_stack_api(data_dir: Path) -> str | None:
    """The API URL of the `vectorflow up` stack of `data_dir`, if its server is running."""
    stack = read_stack(stack_file(data_dir))
    pid = stack.get("server_pid")
    return stack.get("api_url") if pid and _alive(pid) else None


def stop_stack(state_file: Path) -> list[int]:
    """Stop the processes `up` recorded (only those, and only if they are still ours)."""
    stack = read_stack(state_file)
    if not stack:
        return []
    stopped = []
    workers = stack.get("worker_pids") or [stack.get("worker_pid")]  # older files: one worker
    for pid in (*workers, stack.get("server_pid")):
        if pid and _alive(pid):
            os.killpg(pid, signal.SIGTERM)  # its own session: the server's children go too
            for _ in range(100):
                if not _alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
            stopped.append(pid)
    state_file.unlink(missing_ok=True)
    return stopped


def up(args: argparse.Namespace) -> int:
    """Start server, pool, deployments and worker; print the UI URL."""
    settings = load_settings(args.data_dir)
    root = repo_root()
    run_dir = settings.data_dir / "run"
    state_file = stack_file(settings.data_dir)
    if stack := read_stack(state_file):
        if _alive(stack.get("server_pid", 0)):
            print(f"already up: {stack['ui_url']} (stop it with `vectorflow down`)")
            return INVALID
    api_url = f"http://127.0.0.1:{args.port}/api"
    env = stack_environment(api_url, settings.data_dir, root)
    server = _start(_prefect("server", "start", "--host", "127.0.0.1", "--port", str(args.port)),
                    env, run_dir / "server.log", root)
    state = {"server_pid": server.pid, "worker_pids": [], "api_url": api_url,
             "ui_url": api_url.removesuffix("/api")}
    run_dir.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state))
    try:
        _wait_healthy(api_url, server, args.timeout)
        subprocess.run(_prefect("work-pool", "create", POOL, "--type", "process", "--overwrite"),
                       env=env, cwd=root, check=True, capture_output=True)
        deployed = subprocess.run(_prefect("--no-prompt", "deploy", "--all"), env=env, cwd=root,
                                  capture_output=True, text=True)
        if deployed.returncode != 0:
            raise RuntimeError(f"prefect deploy failed:\n{deployed.stdout[-3000:]}")
        _notifications(settings.webhook_url, api_url)
        for n in range(1, args.workers + 1):
            name = f"{socket.gethostname()}-{n}"  # several workers on one pool: each its own name
            log = run_dir / ("worker.log" if args.workers == 1 else f"worker-{n}.log")
            limit = ["--limit", str(args.worker_limit)] if args.worker_limit else []
            worker = _start(_prefect("worker", "start", "--pool", POOL, "--name", name, *limit),
                            env, log, root)
            state["worker_pids"].append(worker.pid)
            state_file.write_text(json.dumps(state))
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        stop_stack(state_file)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    notices = (f"failed and crashed runs are posted to {webhook_host(settings.webhook_url)}"
               if settings.webhook_url else "no webhook for failed runs (VECTORFLOW_WEBHOOK_URL)")
    print(f"VectorFlow is up. Prefect UI: {state['ui_url']}\n"
          f"  {args.workers} worker(s) on the {POOL!r} pool; server database: "
          f"{server_database(env)}\n"
          f"  data dir {settings.data_dir}; logs in {run_dir}\n  {notices}\n"
          f"  stop it with `vectorflow down`" + ("" if args.detach else " or Ctrl-C"))
    if args.detach:
        return OK
    try:
        while server.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    stop_stack(state_file)
    return OK


def _notifications(webhook_url: str | None, api_url: str) -> None:
    """The failed-run webhook automation (created, updated, or removed when no URL is set)."""
    prefect_environment()
    try:
        configure_notifications(webhook_url, api_url)
    except Exception as exc:  # noqa: BLE001 - any API failure stops `up` with one message
        raise RuntimeError(f"could not set up notifications: {type(exc).__name__}: {exc}") from exc


def down(args: argparse.Namespace) -> int:
    """Stop what `vectorflow up` started."""
    settings = load_settings(args.data_dir)
    stopped = stop_stack(stack_file(settings.data_dir))
    print(f"stopped {len(stopped)} process(es)" if stopped else "nothing was running")
    return OK


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parsers(sub) -> None:
    """The up and down commands."""
    up_parser = command_parser(
        sub, "up", "Start a local Prefect server, the work pool, the deployments and a worker.",
        "vectorflow up --port 4200",
    )
    up_parser.add_argument("--port", type=int, default=4200, help="Prefect server port")
    up_parser.add_argument("--detach", action="store_true",
                           help="return once everything is up (stop with `vectorflow down`)")
    up_parser.add_argument("--workers", type=_positive, default=1,
                           help="process workers to start on the pool (default 1)")
    up_parser.add_argument("--worker-limit", type=_positive, default=None,
                           help="flow runs each worker runs at once (default: no limit)")
    up_parser.add_argument("--timeout", type=float, default=120,
                           help="seconds to wait for the server to become healthy")
    up_parser.set_defaults(run=up)
    down_parser = command_parser(sub, "down", "Stop what `vectorflow up` started.",
                                 "vectorflow down")
    down_parser.set_defaults(run=down)
