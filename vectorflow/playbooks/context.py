"""Market context and staleness, computed from the candles before `as_of`.

Stale or gappy inputs skip the request (`skipped_stale`): the last closed candle more than two
timeframes before as_of, or any candle missing among the last `lookback_bars`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vectorflow.playbooks.bars import Bars
from vectorflow.playbooks.inputs import (
    ATR_PERIOD,
    ATR_WINDOW,
    DAY_MS,
    SIGNAL_LEVELS,
    PlaybookInputs,
    wilder_atr,
)
from vectorflow.playbooks.ticks import infer_tick
from vectorflow.timeframes import ms_to_iso, timeframe_ms
from vectorflow.units import Unit

RANGE_BARS = 20


def context_bars(timeframe: str, lookback_bars: int) -> int:
    """Bars before as_of a playbook's market context reads: gaps, ATR, 24 h, the prior day."""
    return max(lookback_bars, ATR_WINDOW, 2 * DAY_MS // timeframe_ms(timeframe) + 2, RANGE_BARS)


def staleness(candles: Bars, unit: Unit, as_of_ms: int, lookback: int) -> str | None:
    """Why these candles are too old or gappy to write from at as_of (None when they are fine)."""
    step = timeframe_ms(unit.timeframe)
    if not len(candles):
        return f"no candles stored before {ms_to_iso(as_of_ms)}"
    times = candles.open_time
    last_close = int(times[-1]) + step
    if as_of_ms - last_close > 2 * step:
        return (
            f"last closed candle ends {ms_to_iso(last_close)}, more than two timeframes "
            f"before {ms_to_iso(as_of_ms)}"
        )
    start = last_close - lookback * step
    present = int((times >= start).sum())
    if present >= lookback:
        return None
    if int(times[0]) > start:
        return f"only {present} candles stored before {ms_to_iso(as_of_ms)}; {lookback} needed"
    return f"{lookback - present} of the last {lookback} candles are missing (gaps)"


def market_context(candles: Bars, step: int) -> tuple[dict[str, float], dict[str, float]]:
    """(market, levels) from candles ending at as_of: last price, 24 h figures, ATR, structure."""
    times, high, low, close = candles.open_time, candles.high, candles.low, candles.close
    as_of = int(times[-1]) + step
    first_in_day = int(np.searchsorted(times + step, as_of - DAY_MS, side="right"))
    reference = close[first_in_day - 1] if first_in_day else candles.open[0]
    day = slice(first_in_day, None)  # candles closing within the last 24 h
    market = {
        "last_price": float(close[-1]),
        "change_24h": float(close[-1] / reference - 1),
        "high_24h": float(high[day].max()),
        "low_24h": float(low[day].min()),
        "volume_24h": float(candles.volume[day].sum()),
        "atr": wilder_atr(high[-ATR_WINDOW:], low[-ATR_WINDOW:], close[-ATR_WINDOW:], ATR_PERIOD),
    }
    quote = candles.quote_volume[day]
    if not np.isnan(quote).all():
        market["quote_volume_24h"] = float(np.nansum(quote))
    levels = {
        "range_high_20": float(high[-RANGE_BARS:].max()),
        "range_low_20": float(low[-RANGE_BARS:].min()),
    }
    today = (as_of - 1) // DAY_MS * DAY_MS
    prior = slice(*np.searchsorted(times, [today - DAY_MS, today], side="left"))
    if prior.stop > prior.start:
        levels["prior_day_high"] = float(high[prior].max())
        levels["prior_day_low"] = float(low[prior].min())
    return market, levels


def signal_levels(signals: dict[str, object]) -> dict[str, float]:
    """The price levels in a signals row, named as the payload names them."""
    out = {}
    for column, name in SIGNAL_LEVELS.items():
        value = signals.get(column)
        if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
            out[name] = float(value)
    return out


def build_inputs(
    unit: Unit,
    candles: pd.DataFrame | Bars,
    as_of_ms: int,
    signals: dict[str, object] | None = None,
    *,
    lookback_bars: int = 48,
    now_ms: int | None = None,
    sections: dict[str, dict] | None = None,
    tick_size: float | None = None,
) -> PlaybookInputs:
    """Inputs of one playbook from candles (those closing after as_of are ignored).

    Staleness is judged at `now_ms` (the wall clock of a run for the latest candle), or at
    as_of itself for a playbook asked for a given time. Without `tick_size` the tick is
    inferred from the candles' prices.
    """
    step = timeframe_ms(unit.timeframe)
    bars = candles if isinstance(candles, Bars) else Bars.of(candles)
    candles = bars.closed_by(as_of_ms, step)
    signals = dict(signals or {})
    reference = as_of_ms if now_ms is None else max(now_ms, as_of_ms)
    stale = staleness(candles, unit, reference, lookback_bars)
    if stale is None and len(candles) <= ATR_PERIOD:
        stale = f"only {len(candles)} candles before {ms_to_iso(as_of_ms)}; ATR needs more"
    signal_as_of = signals.get("as_of_ms")
    if stale is None and isinstance(signal_as_of, int) and as_of_ms - signal_as_of > 2 * step:
        stale = f"signals are as of {ms_to_iso(signal_as_of)}, more than two timeframes old"
    sections = dict(sections or {})
    if stale is not None:
        return PlaybookInputs(unit, as_of_ms, signals=signals, stale=stale, sections=sections)
    market, levels = market_context(candles, step)
    levels.update(signal_levels(signals))
    tick = tick_size or tick_from_bars(candles)
    return PlaybookInputs(unit, as_of_ms, market, levels, signals, None, sections, tick)


def tick_from_bars(candles: Bars, bars: int = 100) -> float:
    """The tick inferred from the last bars' open, high, low and close."""
    tail = candles.cut(max(0, len(candles) - bars), len(candles))
    return infer_tick(np.concatenate([tail.open, tail.high, tail.low, tail.close]))
