"""The payload's `higher_timeframe` section: the next higher configured timeframe as of `as_of`.

Its last bar closed at or before `as_of` gives the regime (label, ADX, +DI, −DI) and the levels
a higher timeframe adds to the series' own: the high and low of its last 20 bars and its latest
trap level (the TPO and volume profile are the same UTC session's at every timeframe). A level
of this section is cited in `levels_used` with the `htf_` prefix (`htf_range_high_20`).
"""

from __future__ import annotations

import numpy as np

from vectorflow.lake.storage import Storage
from vectorflow.playbooks.reads import read_candles
from vectorflow.playbooks.signal_rows import signal_rows, signal_time
from vectorflow.timeframes import ms_to_iso, timeframe_ms
from vectorflow.units import Unit

REGIME_FIELDS = ("regime", "adx", "plus_di", "minus_di", "natr_rank")
RANGE_BARS = 20


def higher_timeframe(timeframe: str, configured: tuple[str, ...] | list[str]) -> str | None:
    """The next configured timeframe longer than `timeframe` (None when there is none)."""
    step = timeframe_ms(timeframe)
    longer = sorted((tf for tf in set(configured) if timeframe_ms(tf) > step), key=timeframe_ms)
    return longer[0] if longer else None


def _unavailable(reason: str) -> dict:
    return {"source": "candles, signals", "unavailable": reason}


def _levels(opens: np.ndarray, high, low, close_time: int, step: int) -> dict[str, float]:
    """High and low of the last RANGE_BARS bars closed at or before `close_time`."""
    end = np.searchsorted(opens + step, close_time, side="right")
    if end < RANGE_BARS:
        return {}
    return {
        "range_high_20": float(high[end - RANGE_BARS : end].max()),
        "range_low_20": float(low[end - RANGE_BARS : end].min()),
    }


def higher_sections(
    lake: Storage,
    unit: Unit,
    as_ofs: list[int],
    configured: tuple[str, ...] | list[str],
    *,
    tpo_row_size: float | None = None,
) -> dict[int, dict]:
    """The higher_timeframe section of each as_of."""
    htf = higher_timeframe(unit.timeframe, configured)
    if htf is None:
        reason = f"no timeframe longer than {unit.timeframe} is configured"
        return {a: _unavailable(reason) for a in as_ofs}
    h_unit = Unit(unit.exchange, unit.market, unit.symbol, htf)
    step = timeframe_ms(htf)
    closes = {a: signal_time(a, htf) for a in as_ofs}
    first, last = min(closes.values()), max(closes.values())
    candles = read_candles(lake, h_unit, first - (RANGE_BARS + 1) * step, last)
    opens = candles["open_time"].to_numpy(np.int64)
    high, low = candles["high"].to_numpy(float), candles["low"].to_numpy(float)
    closed = set((opens + step).tolist())
    signals = signal_rows(lake, h_unit, sorted(set(closes.values())), tpo_row_size=tpo_row_size)
    out = {}
    for as_of, close_time in closes.items():
        if close_time not in closed:
            out[as_of] = _unavailable(f"no {htf} candle closed at {ms_to_iso(close_time)}")
            continue
        row = signals.get(close_time) or {}
        section = {"timeframe": htf, "time": ms_to_iso(close_time), "source": "candles, signals"}
        section |= {k: row.get(k) for k in REGIME_FIELDS}
        levels = _levels(opens, high, low, close_time, step)
        trap = row.get("last_trap_level")
        if isinstance(trap, float) and trap > 0:
            levels["trap_level"] = trap
            section["last_trap_type"] = row.get("last_trap_type")
        section["levels"] = levels
        out[as_of] = section
    return out
