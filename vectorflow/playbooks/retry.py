"""Retries of LLM requests: transient errors only, `Retry-After` honoured, bounded attempts.

The backoff (exponential, jittered, time-scaled) is the resilience layer's `RetryPolicy`;
what this adds for the LLM is the server's own wait after a 429 (`Retry-After`), used instead
of the backoff unless it is longer than the cap: then the call fails at once (the breaker
counts it) rather than holding a worker for minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from vectorflow.errors import TransientError
from vectorflow.resilience.retry import RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")


class LlmUnavailable(TransientError):
    """The LLM API failed in a way worth retrying (network, timeout, 429, 5xx)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    retry_after_cap: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`fn()`, retried on TransientError as `policy` says; other errors pass through at once."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except TransientError as exc:
            asked = getattr(exc, "retry_after", None)
            wait = policy.delay(attempt) if asked is None else asked
            if attempt == policy.attempts or wait > retry_after_cap:
                raise
            log.warning(
                "%s; attempt %d of %d, retrying in %.2f s",
                exc if what in str(exc) else f"{what}: {exc}",
                attempt,
                policy.attempts,
                wait,
            )
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
