"""Calendar arithmetic of the lake: the UTC day, month or year a time lies in."""

from __future__ import annotations

from datetime import datetime, timezone

DAY_MS = 86_400_000


def period_start(ms: int, period: str) -> int:
    """Start of the UTC day, month or year containing `ms`."""
    if period == "day":
        return ms // DAY_MS * DAY_MS
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    first = dt.replace(day=1, hour=0, minute=0, second=0) if period == "month" else None
    if period == "year":
        first = dt.replace(month=1, day=1, hour=0, minute=0, second=0)
    if first is None:
        raise ValueError(f"unknown period {period!r}")
    return int(first.timestamp()) * 1000


def period_end(ms: int, period: str) -> int:
    """Start of the period after the one containing `ms`."""
    start = period_start(ms, period)
    if period == "day":
        return start + DAY_MS
    ahead = 32 if period == "month" else 367  # days: always inside the next period
    return period_start(start + ahead * DAY_MS, period)
