"""The Grok client: xAI's OpenAI-compatible REST API over `requests`.

`POST {base}/chat/completions` with a strict `json_schema` response format, `GET {base}/models`
to check the configured model at the start of a run. Transient failures (network, timeouts, 429
honouring Retry-After, 5xx) are retried by `vectorflow.playbooks.retry`; 400/401/403/404/422 are
permanent. The key travels only in the Authorization header and is cut out of every error text.
"""

from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import dataclass

import requests
from pydantic import SecretStr

from vectorflow.errors import PermanentError, TransientError
from vectorflow.playbooks.contract import response_format
from vectorflow.playbooks.retry import LlmUnavailable, call_with_retries
from vectorflow.resilience.retry import RetryPolicy
from vectorflow.settings.playbooks import PlaybookSettings

log = logging.getLogger(__name__)

TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524})


class LlmRejected(PermanentError):
    """The API refused the request for good (key, model, request shape)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Completion:
    """One chat completion: the answer text and what it cost."""

    content: str | None
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    latency_ms: int


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now; None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class GrokClient:
    """Chat completions and the model list of an OpenAI-compatible endpoint (xAI by default)."""

    def __init__(
        self,
        config: PlaybookSettings,
        api_key: SecretStr | str,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.policy = policy or RetryPolicy(attempts=config.attempts)
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": "vectorflow-playbooks"})
        self.requests_made = 0

    def __repr__(self) -> str:
        return f"GrokClient(base_url={self.config.base_url!r}, model={self.config.model!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def _redact(self, text: str) -> str:
        key = self._key.get_secret_value()
        return text.replace(key, "**********") if key else text

    def _send(self, method: str, path: str, body: dict | None, what: str) -> requests.Response:
        url = f"{self.config.base_url}{path}"
        headers = {"Authorization": f"Bearer {self._key.get_secret_value()}"}
        timeout = (self.config.connect_timeout_seconds, self.config.read_timeout_seconds)
        self.requests_made += 1
        try:
            response = self.session.request(
                method, url, json=body, headers=headers, timeout=timeout
            )
        except requests.Timeout as exc:
            raise LlmUnavailable(f"{what}: timed out ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise LlmUnavailable(self._redact(f"{what}: {type(exc).__name__}: {exc}")) from None
        if response.status_code < 400:
            return response
        detail = self._redact(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
        if response.status_code in TRANSIENT_STATUS:
            raise LlmUnavailable(
                detail, retry_after=retry_after_seconds(response.headers.get("Retry-After"))
            )
        raise LlmRejected(detail, status=response.status_code)

    def _call(self, method: str, path: str, body: dict | None, what: str) -> dict:
        def once() -> dict:
            response = self._send(method, path, body, what)
            try:
                data = response.json()
            except ValueError:
                raise LlmUnavailable(
                    f"{what}: the API answered with a body that is no JSON"
                ) from None
            if not isinstance(data, dict):
                raise LlmUnavailable(f"{what}: the API answered with JSON that is no object")
            return data

        return call_with_retries(
            once, self.policy, retry_after_cap=self.config.retry_after_cap_seconds, what=what
        )

    def models(self) -> list[str]:
        """Model ids (and aliases) the key may use, from GET /models."""
        data = self._call("GET", "/models", None, "GET /models")
        names = []
        for entry in data.get("data") or []:
            if isinstance(entry, dict):
                names += [entry.get("id")] + list(entry.get("aliases") or [])
        return [n for n in names if isinstance(n, str)]

    def check_model(self) -> None:
        """PermanentError naming the configured model when the API does not offer it."""
        offered = self.models()
        if self.config.model not in offered:
            listed = ", ".join(sorted(offered)[:20]) or "none"
            raise LlmRejected(
                f"model {self.config.model!r} is not offered by {self.config.base_url} "
                f"(offered: {listed}); set VECTORFLOW_LLM_MODEL or [playbooks] model"
            )

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """One chat completion with the playbook schema; retried on transient errors."""
        body = {
            "model": self.config.model,
            "messages": messages,
            "response_format": response_format(),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "stream": False,
        }
        started = time.monotonic()
        data = self._call("POST", "/chat/completions", body, "POST /chat/completions")
        latency_ms = int((time.monotonic() - started) * 1000)
        return _completion(data, latency_ms)


def _completion(data: dict, latency_ms: int) -> Completion:
    """The answer text and usage of a chat completion body."""
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise LlmUnavailable("POST /chat/completions: the answer has no choices") from None
    if message.get("refusal"):
        content = None
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens_in = _int(usage.get("prompt_tokens"))
    total = _int(usage.get("total_tokens"))
    # xAI counts reasoning tokens outside completion_tokens but inside total_tokens: both billed
    tokens_out = max(_int(usage.get("completion_tokens")), total - tokens_in)
    return Completion(
        content=content if isinstance(content, str) else None,
        finish_reason=choice.get("finish_reason"),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        latency_ms=latency_ms,
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


__all__ = ["Completion", "GrokClient", "LlmRejected", "LlmUnavailable", "TransientError"]
