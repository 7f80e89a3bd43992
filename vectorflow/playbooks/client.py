"""The Grok client: xAI's OpenAI-compatible REST API over `requests`.

`POST {base}/chat/completions` with a strict `json_schema` response format, `GET {base}/models`
to check the configured model at the start of a run. Every request goes through the resilience
guard with the LLM's failure table (`vectorflow.playbooks.guard`): breaker, Retry-After, retries
of transient failures only. The key travels only in the Authorization header and is cut out of
every error text.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import requests
from pydantic import SecretStr

from vectorflow.errors import LlmRejected, LlmUnavailable, VectorflowError
from vectorflow.playbooks.contract import response_format
from vectorflow.playbooks.guard import KIND, TABLE, TARGET, llm_target
from vectorflow.resilience.failures import Facts, Response, Verdict
from vectorflow.resilience.guard import Guard, guard_for
from vectorflow.resilience.retry import RetryPolicy
from vectorflow.settings.playbooks import PlaybookSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    """One chat completion: the answer text and what it cost."""

    content: str | None
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    latency_ms: int


class GrokClient:
    """Chat completions and the model list of an OpenAI-compatible endpoint (xAI by default)."""

    def __init__(
        self,
        config: PlaybookSettings,
        api_key: SecretStr | str,
        guard: Guard,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.config, self.guard = config, guard
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.target = llm_target(config, self._classify, policy or guard.policy)
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

    def _classify(
        self, exc: BaseException, what: str, response: Response | None
    ) -> tuple[Verdict, VectorflowError, Facts]:
        """The LLM table's verdict; the API's words (the body, else the exception) redacted."""
        said = response.body[:300] if response is not None else f"{type(exc).__name__}: {exc}"
        return TABLE.judge(Facts.of(TARGET, exc, response, message=self._redact(said)), what)

    def _send(self, method: str, path: str, body: dict | None, responses: list[Response]):
        """One HTTP request; an answer of 400 or more raises, the response recorded first."""
        url = f"{self.config.base_url}{path}"
        headers = {"Authorization": f"Bearer {self._key.get_secret_value()}"}
        timeout = (self.config.connect_timeout_seconds, self.config.read_timeout_seconds)
        self.requests_made += 1
        response = self.session.request(method, url, json=body, headers=headers, timeout=timeout)
        responses.append(
            Response(url, response.status_code, dict(response.headers), response.text[:2000])
        )
        response.raise_for_status()
        return response

    def _call(self, method: str, path: str, body: dict | None, what: str) -> dict:
        return self.guard.call(
            self.target,
            functools.partial(self._send, method, path, body),
            kind=KIND,
            what=what,
            check=functools.partial(_json_object, what=what),
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
        raise LlmUnavailable(f"{TARGET} POST /chat/completions: no choices in the answer") from None
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


def _json_object(response: requests.Response, *, what: str) -> dict:
    """The body as a JSON object; LlmUnavailable (retried) when it is none (a proxy's page)."""
    try:
        data = response.json()
    except ValueError:
        raise LlmUnavailable(f"{TARGET} {what}: the API's answer is no JSON") from None
    if not isinstance(data, dict):
        raise LlmUnavailable(f"{TARGET} {what}: the API's answer is JSON but no object")
    return data


def grok_client(settings, api_key: SecretStr | str) -> GrokClient:
    """A client for the configured endpoint, through the data dir's guard."""
    return GrokClient(settings.playbooks, api_key, guard_for(settings))
