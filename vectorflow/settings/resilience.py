"""The `[resilience]` section: retries, breakers, waits, rate budgets, time scale, shared state.

    [resilience]
    time_scale = 1.0                 # < 1 shrinks every window, ban and wait (tests, demos)
    retry_attempts = 5               # attempts per request, the first included
    retry_base_seconds = 0.5         # backoff: base * 2**(attempt-1), full jitter, capped
    retry_max_seconds = 30
    breaker_failures = 5             # consecutive transient failures that open a breaker
    breaker_cooldown_seconds = 300   # open -> half-open after this long
    max_wait_seconds = 900           # a ban or Retry-After longer than this fails the call
    shared_state_url = ""            # postgresql://...: breakers shared by every host
    [resilience.budgets]             # per-IP budgets by name (see vectorflow.exchanges.specs)
    binance_spot = 6000

`VECTORFLOW_TIME_SCALE` sets `time_scale`; the simulator reads the same variable, so one setting
shrinks the exchange's windows and the client's alike. Every duration here, and the exchanges'
own (a minute, a 10-minute ban, Retry-After), is multiplied by the time scale.

`VECTORFLOW_SHARED_STATE_URL` sets `shared_state_url`. With it, the breakers of every host
running the pipeline are one set, in that PostgreSQL database (`vectorflow.resilience.shared`):
an exchange that fails for one host fails fast for all. Rate limits stay per host, in
`state.db`, because the exchanges count weight per IP.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from vectorflow.errors import InvalidInput
from vectorflow.settings.checks import known

TIME_SCALE_ENV = "VECTORFLOW_TIME_SCALE"

#: The rate budgets `[resilience.budgets]` may override (`vectorflow.exchanges.specs` defines
#: them; a test keeps the two lists equal).
BUDGETS: tuple[str, ...] = (
    "binance_spot",
    "binance_usdm",
    "binance_open_interest_hist",
    "binance_funding",
    "bybit",
)


def check_shared_state_url(url: str) -> str:
    """`url` if it is a PostgreSQL URL; ValueError naming its scheme (never the password)."""
    url = url.strip()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"must be a postgresql://user:password@host:port/database URL "
                         f"(got scheme {scheme or 'none'!r})")  # fmt: skip
    return url


class ResilienceSettings(BaseModel):
    """Retry, breaker, wait and budget settings (see the module docstring for each value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    time_scale: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="Multiplies every window, ban, wait and cool-down, the exchanges' own "
        "included; below 1 for tests and demos (the simulator reads it too).",
    )
    retry_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Tries per exchange request, the first included (transient errors only).",
    )
    retry_base_seconds: float = Field(
        default=0.5,
        ge=0,
        description="Backoff before retry n: base * 2**(n-1), jittered, capped.",
    )
    retry_max_seconds: float = Field(
        default=30.0, ge=0, description="The longest backoff between two tries."
    )
    breaker_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Consecutive transient failures that open a circuit breaker.",
    )
    breaker_cooldown_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How long a breaker stays open before one probe request may go.",
    )
    max_wait_seconds: float = Field(
        default=900.0,
        ge=0,
        description="A ban or Retry-After longer than this fails the call instead of waiting.",
    )
    budgets: Annotated[dict[str, PositiveInt], known(BUDGETS, "budget")] = Field(
        default_factory=dict,
        description="Per-IP request budgets by name (binance_spot, binance_usdm, "
        "binance_open_interest_hist, binance_funding, bybit), replacing the exchange's own.",
    )
    #: it may hold a password, hence never in repr
    shared_state_url: str = Field(
        default="",
        repr=False,
        description="PostgreSQL URL where every host keeps its circuit breakers (and, for a "
        "lake on S3, its partition locks); empty: each host keeps them to itself.",
    )

    @field_validator("shared_state_url")
    @classmethod
    def _postgres(cls, value: str) -> str:
        return check_shared_state_url(value) if value.strip() else ""

    def budget_limit(self, name: str, default: int) -> int:
        """The configured limit of budget `name`, else the exchange's own."""
        return self.budgets.get(name, default)


def time_scale_from_env(env: dict[str, str] | None = None) -> float | None:
    """`VECTORFLOW_TIME_SCALE` as a number (the simulator's own scale), None when unset."""
    text = (os.environ if env is None else env).get(TIME_SCALE_ENV, "").strip()
    if not text:
        return None
    try:
        return ResilienceSettings(time_scale=text).time_scale
    except ValueError:
        raise InvalidInput(f"{TIME_SCALE_ENV}={text!r} is not a number in (0, 100]") from None
