"""Market context and staleness, computed from the candles before `as_of`.

Stale or gappy inputs skip the request (`skipped_stale`): the last closed candle more than two
timeframes before as_of, or any candle missing among the last `lookback_bars`.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from vectorflow.lake.storage import Storage
from vectorflow.playbooks.inputs import (
    ATR_PERIOD,
    DAY_MS,
    SIGNAL_LEVELS,
    PlaybookInputs,
    plain_value,
    read_candles,
    read_signals,
    wilder_atr,
)
from vectorflow.timeframes import floor_ms, ms_to_iso, timeframe_ms
from vectorflow.timeframes import now_ms as wall_clock
from vectorflow.units import Unit

log = logging.getLogger(__name__)

_HISTORY_BARS = 2500  # read before as_of: ATR, 24 h, signals on the fly (regime needs 250+)
_TPO_STEP = 1_800_000  # TPO profiles need candles of 30 minutes or less


def staleness(candles: pd.DataFrame, unit: Unit, as_of_ms: int, lookback: int) -> str | None:
    """Why these candles are too old or gappy to write from at as_of (None when they are fine)."""
    step = timeframe_ms(unit.timeframe)
    if candles.empty:
        return f"no candles stored before {ms_to_iso(as_of_ms)}"
    times = candles["open_time"].to_numpy(dtype=np.int64)
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


def market_context(candles: pd.DataFrame, step: int) -> tuple[dict[str, float], dict[str, float]]:
    """(market, levels) from candles ending at as_of: last price, 24 h figures, ATR, structure."""
    times = candles["open_time"].to_numpy(dtype=np.int64)
    high, low = candles["high"].to_numpy(float), candles["low"].to_numpy(float)
    close = candles["close"].to_numpy(float)
    as_of = int(times[-1]) + step
    day = times + step > as_of - DAY_MS  # candles closing within the last 24 h
    before = np.flatnonzero(times + step <= as_of - DAY_MS)
    reference = close[before[-1]] if len(before) else candles["open"].iloc[0]
    quote = candles["quote_volume"].to_numpy(float) if "quote_volume" in candles else None
    market = {
        "last_price": float(close[-1]),
        "change_24h": float(close[-1] / reference - 1),
        "high_24h": float(high[day].max()),
        "low_24h": float(low[day].min()),
        "volume_24h": float(candles["volume"].to_numpy(float)[day].sum()),
        "atr": wilder_atr(high, low, close, ATR_PERIOD),
    }
    if quote is not None and not np.isnan(quote[day]).all():
        market["quote_volume_24h"] = float(np.nansum(quote[day]))
    levels = {
        "range_high_20": float(high[-20:].max()),
        "range_low_20": float(low[-20:].min()),
    }
    today = (as_of - 1) // DAY_MS * DAY_MS
    prior = (times >= today - DAY_MS) & (times < today)
    if prior.any():
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


def compute_signals(
    lake: Storage, unit: Unit, as_of_ms: int, history: pd.DataFrame
) -> dict[str, object]:
    """Signals at as_of computed from `history` (the candles before it), when none are stored.

    30-minute candles are read for the TPO profile of a coarser series. {} when the signals
    library cannot compute them (the playbook is then written from the candles alone).
    """
    try:
        from vectorflow.signals.compute import signals_at
    except ImportError:  # pragma: no cover - the signals package is part of the project
        return {}
    step = timeframe_ms(unit.timeframe)
    if history.empty:
        return {}
    tpo = None
    if step > _TPO_STEP:
        half_hour = Unit(unit.exchange, unit.market, unit.symbol, "30m")
        tpo = read_candles(lake, half_hour, as_of_ms - 3 * DAY_MS, as_of_ms)
        tpo = None if tpo.empty else tpo
    try:
        row = signals_at(
            _with_times(history),
            as_of=as_of_ms,
            timeframe=unit.timeframe,
            tpo_candles=None if tpo is None else _with_times(tpo),
            tpo_timeframe=None if tpo is None else "30m",
        )
    except Exception as exc:  # noqa: BLE001 - a signal bug must not stop the playbook
        log.warning("%s: signals not computed (%s); candles only", unit.label, exc)
        return {}
    return {k: plain_value(v) for k, v in row.items()} | {"as_of_ms": as_of_ms}


def _with_times(candles: pd.DataFrame) -> pd.DataFrame:
    return candles.assign(open_time=candles["open_time"].astype("datetime64[ms]"))


def build_inputs(
    unit: Unit,
    candles: pd.DataFrame,
    as_of_ms: int,
    signals: dict[str, object] | None = None,
    *,
    lookback_bars: int = 48,
    now_ms: int | None = None,
) -> PlaybookInputs:
    """Inputs of one playbook from candles (those closing after as_of are ignored).

    Staleness is judged at `now_ms` (the wall clock of a run for the latest candle), or at
    as_of itself for a playbook asked for a given time.
    """
    step = timeframe_ms(unit.timeframe)
    if not candles.empty:
        candles = candles[candles["open_time"] + step <= as_of_ms].reset_index(drop=True)
    signals = dict(signals or {})
    reference = as_of_ms if now_ms is None else max(now_ms, as_of_ms)
    stale = staleness(candles, unit, reference, lookback_bars)
    if stale is None and len(candles) <= ATR_PERIOD:
        stale = f"only {len(candles)} candles before {ms_to_iso(as_of_ms)}; ATR needs more"
    signal_as_of = signals.get("as_of_ms")
    if stale is None and isinstance(signal_as_of, int) and as_of_ms - signal_as_of > 2 * step:
        stale = f"signals are as of {ms_to_iso(signal_as_of)}, more than two timeframes old"
    if stale is not None:
        return PlaybookInputs(unit, as_of_ms, signals=signals, stale=stale)
    market, levels = market_context(candles, step)
    levels.update(signal_levels(signals))
    return PlaybookInputs(unit, as_of_ms, market, levels, signals)


def load_inputs(
    lake: Storage,
    unit: Unit,
    as_of_ms: int | None = None,
    *,
    lookback_bars: int = 48,
    now_ms: int | None = None,
) -> PlaybookInputs:
    """Inputs read from the lake: candles before as_of (default: the newest close) and signals.

    The signals are the stored row at as_of when the signals dataset has one, else computed
    from the same candles. Without as_of, staleness is judged at `now_ms` (the wall clock).
    """
    step = timeframe_ms(unit.timeframe)
    clock = wall_clock() if now_ms is None else now_ms
    end = as_of_ms if as_of_ms is not None else floor_ms(clock, unit.timeframe) + step
    history = read_candles(lake, unit, end - _HISTORY_BARS * step, end)
    reference = None  # a playbook for a given time is judged at that time
    if as_of_ms is None:
        if history.empty:
            floor = floor_ms(clock, unit.timeframe)
            return PlaybookInputs(unit, floor, stale=f"no candles stored before {ms_to_iso(end)}")
        as_of_ms, reference = int(history["open_time"].iloc[-1]) + step, clock
        # the same as_of always reads the same window, so the same inputs hash the same
        history = history[history["open_time"] >= as_of_ms - _HISTORY_BARS * step]
    signals = read_signals(lake, unit, as_of_ms) or compute_signals(lake, unit, as_of_ms, history)
    return build_inputs(
        unit, history, as_of_ms, signals, lookback_bars=lookback_bars, now_ms=reference
    )
