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

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value, DEFAULT_BASE_URL).rstrip("/")
