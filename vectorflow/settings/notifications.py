"""The `[notifications]` section: where `vectorflow up` posts failed and crashed runs.

    [notifications]
    webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"   # or VECTORFLOW_WEBHOOK_URL

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

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_http_url(value, WEBHOOK_EXAMPLE)
