"""What the guard knows about one remote API: its failure table, rate budgets, bans and waits.

The caller passes these as data (`vectorflow.exchanges.target` for the exchanges,
`vectorflow.playbooks.guard` for the LLM): this package knows no API by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vectorflow.errors import VectorflowError
from vectorflow.resilience.failures import Facts, Response, Verdict
from vectorflow.resilience.retry import RetryPolicy

#: (exception, what was called, the last response) -> the verdict, the error to raise, the facts
Classifier = Callable[[BaseException, str, Response | None], tuple[Verdict, VectorflowError, Facts]]


@dataclass(frozen=True)
class Budget:
    """One per-IP request budget of an API: `limit` weight (or requests) per window."""

    name: str  # e.g. "binance_spot"; the key of `[resilience.budgets]` overrides in settings
    limit: int
    window_seconds: float
    paths: tuple[str, ...]  # URL path prefixes whose responses report this budget's use
    usage_header: str | None = None  # response header with the server's count this window


@dataclass(frozen=True)
class Target:
    """One remote API as the guard sees it."""

    name: str  # the breaker's target and the limiter's key, e.g. "binance", "grok"
    classify: Classifier
    budgets: tuple[Budget, ...] = ()
    min_ban_seconds: float = 0.0  # a ban lasts at least this long (Retry-After may say more)
    probe_lease: float | None = None  # a lost half-open probe is taken over after this (s)
    max_wait_seconds: float | None = None  # a longer block fails the call; None: the settings'
    policy: RetryPolicy | None = None  # attempts and backoff; None: the settings'
