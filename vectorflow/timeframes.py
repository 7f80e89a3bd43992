"""Timeframes and UTC time parsing: the one place that turns user time options into milliseconds."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from vectorflow.errors import InvalidInput

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}

#: Timeframes the pipeline stores: fixed-length candles that both exchanges serve (Binance also 8h).
TIMEFRAMES: tuple[str, ...] = (
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "1w",
)


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle of `timeframe` in milliseconds; InvalidInput names an unknown one."""
    if timeframe not in TIMEFRAMES:
        raise InvalidInput(
            f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}"
        )
    return int(timeframe[:-1]) * _UNIT_MS[timeframe[-1]]


def floor_ms(ms: int, timeframe: str) -> int:
    """Open time of the `timeframe` candle containing `ms` (weeks start on Monday, as on both)."""
    step = timeframe_ms(timeframe)
    offset = 4 * 86_400_000 if timeframe.endswith("w") else 0  # 1970-01-01 was a Thursday
    return (ms - offset) // step * step + offset


def is_aligned(ms: int, timeframe: str) -> bool:
    """True when `ms` is a candle open time of `timeframe`."""
    return floor_ms(ms, timeframe) == ms


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


#: The times VectorFlow accepts: from the Unix epoch to the end of year 9999 (UTC milliseconds)
EARLIEST_MS, LATEST_MS = 0, 253_402_300_799_999


def parse_time(
    value: str | int | datetime, *, name: str = "time", latest: int | None = None
) -> int:
    """Parse a UTC date (`2024-01-01`), ISO timestamp or epoch milliseconds into UTC milliseconds.

    A timestamp without an offset is UTC; one with an offset is converted to UTC. Times before
    1970 or after 9999, and after `latest` when given, are InvalidInput naming the value.
    """
    if isinstance(value, bool):
        raise InvalidInput(f"{name}: {value!r} is not a date or timestamp")
    ms = value if isinstance(value, int) else _parse_ms(value, name)
    if not EARLIEST_MS <= ms <= LATEST_MS:
        raise InvalidInput(f"{name}: {value!r} is outside the years 1970 to 9999 (UTC)")
    if latest is not None and ms > latest:
        raise InvalidInput(f"{name}: {value!r} is in the future (now {ms_to_iso(latest)})")
    return ms


def _parse_ms(value: str | datetime, name: str) -> int:
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.isdigit() and len(text) >= 10:
            return int(text)
        try:
            if _DATE.match(text):
                dt = datetime.strptime(text, "%Y-%m-%d")
            else:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"{name}: {value!r} is not a UTC date (2024-01-01) or ISO timestamp"
                " (2024-01-01T12:00:00Z)"
            ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def now_ms() -> int:
    """The current UTC time in milliseconds."""
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def ms_to_iso(ms: int | None) -> str | None:
    """Milliseconds to an ISO UTC string such as `2024-01-01T00:00:00Z` (None stays None)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
