"""Playbook settings: the `[playbooks]` section of the settings file, then the environment.

    [playbooks]
    model = "grok-4.3"              # or VECTORFLOW_LLM_MODEL; checked against GET /models
    base_url = "https://api.x.ai/v1"  # or XAI_BASE_URL (the fake server: http://127.0.0.1:N/v1)
    token_budget = 200000           # tokens one run may spend; later series are skipped_budget
    concurrency = 20                # series written at once (requests in flight)
    horizon_bars = 48               # bars after as_of before a playbook expires when graded

The key is never a setting: XAI_API_KEY or its Prefect Secret block (vectorflow.secrets).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vectorflow.errors import InvalidInput

DEFAULT_MODEL = "grok-4.3"
DEFAULT_BASE_URL = "https://api.x.ai/v1"


def check_llm_base_url(value: str, *, name: str) -> str:
    """`value` without a trailing slash; InvalidInput naming it when it is no http(s) URL."""
    from urllib.parse import urlparse

    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(f"{name}: {value!r} is not an http(s) URL such as {DEFAULT_BASE_URL}")
    return value.rstrip("/")


class PlaybookSettings(BaseModel):
    """How playbooks are written, checked and graded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default=DEFAULT_MODEL, min_length=1, max_length=100)
    base_url: str = DEFAULT_BASE_URL
    temperature: float = Field(default=0.1, ge=0, le=2)
    max_tokens: int = Field(default=8192, ge=256)  # reasoning tokens count against it too
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)  # per request, transient errors only
    retry_after_cap_seconds: float = Field(default=60.0, ge=0)
    token_budget: int = Field(default=200_000, ge=0)
    concurrency: int = Field(default=20, ge=1, le=64)  # LLM calls wait on I/O, not CPU
    max_atr_distance: float = Field(default=5.0, gt=0)  # prices within this many ATRs of close
    lookback_bars: int = Field(default=48, ge=2)  # bars checked for gaps before a request
    horizon_bars: int = Field(default=48, ge=1)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_llm_base_url(value, name="base_url")

    def with_env(self, env: dict[str, str]) -> PlaybookSettings:
        """A copy with VECTORFLOW_LLM_MODEL and XAI_BASE_URL applied when set."""
        changes = {}
        if env.get("VECTORFLOW_LLM_MODEL"):
            changes["model"] = env["VECTORFLOW_LLM_MODEL"].strip()
        if env.get("XAI_BASE_URL"):
            changes["base_url"] = check_llm_base_url(env["XAI_BASE_URL"], name="XAI_BASE_URL")
        return self.model_copy(update=changes) if changes else self
