"""Input frames as numpy arrays (UTC epoch milliseconds) and as-of lookups shared by the signals.

Every signal function works on plain arrays: times are int64 UTC milliseconds, prices float64.
This module turns the DataFrames the lake serves (the `candles`, `open_interest` and
`funding_rates` shapes) into those arrays, keeping only rows usable at a given `as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from vectorflow.errors import InvalidInput
from vectorflow.timeframes import parse_time, timeframe_ms

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def to_ms(value: object, *, name: str = "as_of") -> int:
    """UTC epoch milliseconds of an int (ms), ISO string, datetime, pandas or numpy timestamp."""
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, pd.Timestamp):
        ts = value.tz_convert("UTC").tz_localize(None) if value.tzinfo else value
        return int(ts.value // 1_000_000)  # .value is always nanoseconds
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (str, int, datetime)):
        return parse_time(value, name=name)
    raise InvalidInput(f"{name}: {value!r} is not a time")


def time_column_ms(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A timestamp column (naive UTC or zoned) as int64 epoch milliseconds."""
    col = frame[column]
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy(dtype=np.int64)
    return col.to_numpy(dtype="datetime64[ms]").astype(np.int64)


def ms_to_datetime(ms: np.ndarray) -> np.ndarray:
    """int64 epoch milliseconds (with -1 or INT64 min for missing) as naive datetime64[ms]."""
    out = np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")
    out[np.asarray(ms) < 0] = np.datetime64("NaT")
    return out


def _float_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass(frozen=True)
class Candles:
    """OHLCV arrays of one series, sorted by open time, only candles closed by `end`."""

    step_ms: int
    open_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    notional: np.ndarray  # quote volume, or volume x close where the exchange sends none

    @property
    def close_ms(self) -> np.ndarray:
        """Close times (open time + timeframe): when each candle became usable."""
        return self.open_ms + self.step_ms

    def __len__(self) -> int:
        return len(self.open_ms)

    def last_closed(self, as_ofs: np.ndarray) -> np.ndarray:
        """Index of the last candle closed at or before each time (-1 when none)."""
        return np.searchsorted(self.close_ms, as_ofs, side="right") - 1


def candle_arrays(frame: pd.DataFrame, timeframe: str, *, end: int | None = None) -> Candles:
    """Candles of the `candles` view shape as arrays, keeping those closed at or before `end`."""
    step = timeframe_ms(timeframe)
    missing = {"open_time", "open", "high", "low", "close", "volume"} - set(frame.columns)
    if missing:
        raise InvalidInput(f"candles lack column(s) {', '.join(sorted(missing))}")
    open_ms = time_column_ms(frame, "open_time")
    order = np.argsort(open_ms, kind="stable")
    if not np.all(order == np.arange(len(order))):
        frame, open_ms = frame.iloc[order], open_ms[order]
    keep = slice(None) if end is None else slice(0, np.searchsorted(open_ms + step, end, "right"))
    cols = {k: _float_column(frame, k)[keep] for k in ("open", "high", "low", "close", "volume")}
    quote = _float_column(frame, "quote_volume")[keep]
    notional = np.where(np.isnan(quote), cols["volume"] * cols["close"], quote)
    return Candles(step, open_ms[keep], notional=notional, **cols)


def sorted_rows(frame: pd.DataFrame | None, time_col: str, end: int | None) -> pd.DataFrame | None:
    """Rows of `frame` with `time_col` at or before `end`, sorted by it (None for no data)."""
    if frame is None or len(frame) == 0:
        return None
    ms = time_column_ms(frame, time_col)
    out = frame.assign(_ms=ms).sort_values("_ms", kind="stable")
    if end is not None:
        out = out[out["_ms"].to_numpy() <= end]
    return out if len(out) else None


def last_at_or_before(times: np.ndarray, queries: np.ndarray, max_age: int) -> np.ndarray:
    """Index of the last time <= each query and no older than `max_age` ms (-1 when none)."""
    idx = np.searchsorted(times, queries, side="right") - 1
    if len(times) == 0:
        return np.full(len(queries), -1, dtype=np.int64)
    age = queries - times[np.maximum(idx, 0)]
    return np.where((idx >= 0) & (age <= max_age), idx, -1)


def take(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """values[idx] as float64 with NaN where idx is -1."""
    if len(values) == 0:
        return np.full(len(idx), np.nan)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)
