"""The `[playbooks]` section: the model, the endpoint, budgets and horizons of the playbooks.

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

from vectorflow.settings.checks import check_http_url

DEFAULT_MODEL = "grok-4.3"
DEFAULT_BASE_URL = "https://api.x.ai/v1"


class PlaybookSettings(BaseModel):
    """How playbooks are written, checked and graded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        default=DEFAULT_MODEL,
        min_length=1,
        max_length=100,
        description="The LLM asked for playbooks, checked against the API's model list at the "
        "start of a run.",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="OpenAI-compatible API root (xAI's, or the fake LLM's "
        "http://127.0.0.1:N/v1).",
    )
    temperature: float = Field(
        default=0.1, ge=0, le=2, description="Sampling temperature of each request."
    )
    max_tokens: int = Field(  # reasoning tokens count against it too
        default=8192,
        ge=256,
        description="Most tokens one answer may take, reasoning tokens included.",
    )
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Connect timeout of each LLM request."
    )
    read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Read timeout of each LLM request."
    )
    attempts: int = Field(  # per request, transient errors only
        default=3,
        ge=1,
        le=10,
        description="Tries per LLM request, the first included; only transient errors are "
        "retried.",
    )
    retry_after_cap_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A Retry-After longer than this fails the request instead of waiting.",
    )
    token_budget: int = Field(
        default=200_000,
        ge=0,
        description="Tokens one run may spend; series after that are skipped_budget.",
    )
    concurrency: int = Field(  # LLM calls wait on I/O, not CPU
        default=20, ge=1, le=64, description="Series written at once (requests in flight)."
    )
    max_atr_distance: float = Field(  # prices within this many ATRs of close
        default=5.0,
        gt=0,
        description="Every price of a playbook must lie within this many ATRs of the last "
        "close.",
    )
    lookback_bars: int = Field(  # bars checked for gaps before a request
        default=48,
        ge=2,
        description="Bars before as_of checked for gaps; a gap there skips the request "
        "(skipped_stale).",
    )
    horizon_bars: int = Field(
        default=48,
        ge=1,
        description="Bars after as_of a playbook is graded over before it expires.",
    )

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value, DEFAULT_BASE_URL).rstrip("/")
