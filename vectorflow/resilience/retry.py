"""Retry policy: a bounded number of attempts, exponential backoff with jitter, time-scaled."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; before try n+1 wait base * 2**(n-1), capped, jittered, scaled."""

    attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    time_scale: float = 1.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): "equal jitter"."""
        raw = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        draw = (rng or random).random()
        return raw * (0.5 + 0.5 * draw) * self.time_scale
