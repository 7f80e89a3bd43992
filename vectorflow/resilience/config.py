"""Resilience settings: retry counts, breaker threshold and cool-down, waits, budgets, time scale.

File section (every key optional):

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

`VECTORFLOW_TIME_SCALE` overrides `time_scale`; the simulator reads the same variable, so one
setting shrinks the exchange's windows and the client's alike. Every duration here, and the
exchanges' own (a minute, a 10-minute ban, Retry-After), is multiplied by the time scale.

`VECTORFLOW_SHARED_STATE_URL` overrides `shared_state_url`. With it, the breakers of every
host running the pipeline are one set, in that PostgreSQL database
(`vectorflow.resilience.shared`): an exchange that fails for one host fails fast for all.
Rate limits stay per host, in `state.db`, because the exchanges count weight per IP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vectorflow.errors import InvalidInput

TIME_SCALE_ENV = "VECTORFLOW_TIME_SCALE"


class ResilienceFile(BaseModel):
    """The `[resilience]` section of the settings file."""

    model_config = ConfigDict(extra="forbid")
    time_scale: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="Multiplies every window, ban, wait and cool-down, the exchanges' own "
        "included; below 1 for tests and demos (the simulator reads it too). Environment: "
        "VECTORFLOW_TIME_SCALE.",
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
    budgets: dict[str, int] = Field(
        default_factory=dict,
        description="Per-IP request budgets by name (binance_spot, binance_usdm, "
        "binance_open_interest_hist, binance_funding, bybit), replacing the exchange's own.",
    )
    shared_state_url: str = Field(  # postgresql://...: breakers of every host (module docstring)
        default="",
        description="PostgreSQL URL where every host keeps its circuit breakers (and, for a "
        "lake on S3, its partition locks); empty: each host keeps them to itself. "
        "Environment: VECTORFLOW_SHARED_STATE_URL.",
    )

    @field_validator("shared_state_url")
    @classmethod
    def _postgres(cls, value: str) -> str:
        return check_shared_state_url(value) if value else value

    @field_validator("budgets")
    @classmethod
    def _known(cls, value: dict[str, int]) -> dict[str, int]:
        from vectorflow.exchanges.specs import all_budgets

        known = all_budgets()
        for name, limit in value.items():
            if name not in known:
                raise ValueError(f"unknown budget {name!r}; expected one of {', '.join(known)}")
            if limit < 1:
                raise ValueError(f"budget {name} must be at least 1 (got {limit})")
        return value


@dataclass(frozen=True)
class ResilienceSettings:
    """Resolved resilience settings (see the module docstring for each value)."""

    time_scale: float = 1.0
    retry_attempts: int = 5
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 300.0
    max_wait_seconds: float = 900.0
    budgets: dict[str, int] = field(default_factory=dict)
    #: where breakers live when hosts share them (a PostgreSQL URL; it may hold a password,
    #: hence never in repr); "" keeps them in the host's state.db
    shared_state_url: str = field(default="", repr=False)

    def budget_limit(self, name: str, default: int) -> int:
        """The configured limit of budget `name`, else the exchange's own."""
        return self.budgets.get(name, default)


def time_scale_from_env(env: dict[str, str] | None = None) -> float | None:
    """`VECTORFLOW_TIME_SCALE` as a number, None when unset."""
    text = (os.environ if env is None else env).get(TIME_SCALE_ENV)
    if not text:
        return None
    try:
        scale = float(text)
    except ValueError:
        raise InvalidInput(f"{TIME_SCALE_ENV}={text!r} is not a number") from None
    if not 0 < scale <= 100:
        raise InvalidInput(f"{TIME_SCALE_ENV}={text!r} must be in (0, 100]")
    return scale


def check_shared_state_url(url: str, name: str = "shared_state_url") -> str:
    """`url` if it is a PostgreSQL URL; ValueError naming the setting (never the password)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"{name} must be a postgresql://user:password@host:port/database URL "
                         f"(got scheme {scheme or 'none'!r})")  # fmt: skip
    return url


def resolve_resilience(file: ResilienceFile, env: dict[str, str]) -> ResilienceSettings:
    """The file's section with `VECTORFLOW_TIME_SCALE` and `VECTORFLOW_SHARED_STATE_URL` applied."""
    values = file.model_dump()
    scale = time_scale_from_env(env)
    if scale is not None:
        values["time_scale"] = scale
    shared = env.get("VECTORFLOW_SHARED_STATE_URL", "").strip()
    if shared:
        try:
            name = "VECTORFLOW_SHARED_STATE_URL"
            values["shared_state_url"] = check_shared_state_url(shared, name)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    return ResilienceSettings(**values)
