"""The `[notifications]` section: where `vectorflow up` posts failed and crashed runs, and
whether new actionable playbooks are posted too.

    [notifications]
    webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"   # or VECTORFLOW_WEBHOOK_URL
    playbooks = true                # also post each new long/short playbook, once
    playbooks_min_confidence = 60   # ... whose confidence is at least this

The URL may hold a token: it is never shown in a repr or an error message.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vectorflow.settings.checks import check_http_url

WEBHOOK_EXAMPLE = "https://hooks.slack.com/..."


class NotificationSettings(BaseModel):
    """Where failed runs are reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    webhook_url: str | None = Field(
        default=None,
        repr=False,
        description="Where `vectorflow up` has Prefect post every failed or crashed flow run "
        "(a Slack incoming webhook or any http(s) endpoint).",
    )
    playbooks: bool = Field(
        default=False,
        description="Post each new `ok` or `repaired` long or short playbook to the webhook, "
        "once (series, bias, entry zone, stop, targets, valid until, source).",
    )
    playbooks_min_confidence: int = Field(
        default=60,
        ge=0,
        le=100,
        description="Only playbooks of at least this confidence (0-100) are posted.",
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_http_url(value, WEBHOOK_EXAMPLE)


class ReportSettings(BaseModel):
    """The `[reports]` section: where `<data dir>/reports` is served."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str | None = Field(
        default=None,
        description="Where <data dir>/reports is served for a shared deployment: the backtest "
        "reports' artifacts link there. Without it, `vectorflow up` serves the folder on "
        "127.0.0.1 beside the Prefect UI.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_http_url(value, "https://reports.example.com/vectorflow")
