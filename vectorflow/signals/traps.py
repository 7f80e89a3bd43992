"""Traps (failed breakouts) and sweeps, against rolling and structural levels.

Level sources, the breakout / confirmation / invalidation rules and the event columns:
docs/signals.md#traps-and-sweeps. Each level is known before the bar it is tested on closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from vectorflow.errors import InvalidInput
from vectorflow.signals.inputs import DAY_MS

SOURCES = {
    "rolling_high": "high",
    "rolling_low": "low",
    "prior_session_high": "high",
    "prior_session_low": "low",
    "vah": "high",
    "val": "low",
    "ib_high": "high",
    "ib_low": "low",
}
TYPES = {("high", 0): "bull_trap", ("high", 1): "sweep_high", ("low", 0): "bear_trap"}
TYPES[("low", 1)] = "sweep_low"


@dataclass(frozen=True)
class TrapSettings:
    """Trap and sweep parameters (defaults: docs/signals.md)."""

    lookback: int = 20
    confirm_bars: int = 3
    sweep_min: float = 0.0005
    sweep_atr: float = 0.1
    volume_bars: int = 20

    def __post_init__(self) -> None:
        if self.lookback < 1 or self.confirm_bars < 1 or self.volume_bars < 1:
            raise InvalidInput("trap lookback, confirm_bars and volume_bars must be at least 1")


@dataclass(frozen=True)
class TrapEvents:
    """Events as parallel arrays, ordered by (confirm, breakout, source order)."""

    type: np.ndarray  # object: bull_trap, bear_trap, sweep_high, sweep_low
    side: np.ndarray  # object: high, low
    source: np.ndarray  # object: a SOURCES key
    level: np.ndarray
    extreme: np.ndarray
    breakout: np.ndarray  # bar index of the breakout
    confirm: np.ndarray  # bar index of the confirming close
    invalidated: np.ndarray  # bar index of the invalidating close, -1 while valid

    def __len__(self) -> int:
        return len(self.confirm)


@njit(cache=True)
def _scan(high, close, level, confirm_bars, eps, kind, bar_b, bar_t, lvl, ext):
    """High-side events of one level series; returns how many were written."""
    k, pb, pl, pe = 0, -1, 0.0, 0.0
    for t in range(1, len(close)):
        if pb >= 0:
            if close[t] > pe:
                pb = -1
            elif close[t] < pl:
                kind[k], bar_b[k], bar_t[k], lvl[k], ext[k] = 0, pb, t, pl, max(pe, high[t])
                k += 1
                pb = -1
            elif t - pb >= confirm_bars:
                pb = -1
            else:
                pe = max(pe, high[t])
        lv = level[t]
        if lv != lv or not close[t - 1] <= lv:
            continue
        if close[t] > lv:
            pb, pl, pe = t, lv, high[t]
        elif close[t] < lv and high[t] > lv + eps[t] * abs(lv):
            kind[k], bar_b[k], bar_t[k], lvl[k], ext[k] = 1, t, t, lv, high[t]
            k += 1
    return k


@njit(cache=True)
def _invalidations(close, confirm, extreme, out):
    for e in range(len(confirm)):
        out[e] = -1
        for i in range(confirm[e] + 1, len(close)):
            if close[i] > extreme[e]:
                out[e] = i
                break


@njit(cache=True)
def _latest_valid(confirm, invalidated, at, out):
    for k in range(len(at)):
        e = np.searchsorted(confirm, at[k], side="right") - 1
        while e >= 0 and 0 <= invalidated[e] <= at[k]:
            e -= 1
        out[k] = e


def latest_valid(events: TrapEvents, bars: np.ndarray) -> np.ndarray:
    """Per bar index: the latest event confirmed by that bar and not invalidated by it (or -1)."""
    out = np.empty(len(bars), dtype=np.int64)
    _latest_valid(events.confirm, events.invalidated, np.asarray(bars, dtype=np.int64), out)
    return out


def _side_events(high, close, level, settings, eps) -> tuple[np.ndarray, ...]:
    n = len(close)
    kind, bar_b, bar_t = (np.empty(n, np.int64) for _ in range(3))
    lvl, ext = np.empty(n), np.empty(n)
    k = _scan(high, close, level, settings.confirm_bars, eps, kind, bar_b, bar_t, lvl, ext)
    inv = np.empty(k, np.int64)
    _invalidations(close, bar_t[:k], ext[:k], inv)
    return kind[:k], bar_b[:k], bar_t[:k], lvl[:k], ext[:k], inv


def find_traps(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    natr: np.ndarray,
    levels: dict[str, np.ndarray],
    settings: TrapSettings = TrapSettings(),
) -> TrapEvents:
    """Every trap and sweep against the given level series (one float array per source)."""
    eps = np.fmax(settings.sweep_min, settings.sweep_atr * natr)
    parts: list[tuple] = []
    for order, (source, level) in enumerate(levels.items()):
        side = SOURCES[source]
        sign = 1.0 if side == "high" else -1.0
        src = (sign * high, sign * close) if side == "high" else (-low, -close)
        kind, b, t, lvl, ext, inv = _side_events(
            np.ascontiguousarray(src[0]), np.ascontiguousarray(src[1]),
            np.ascontiguousarray(sign * level, dtype=np.float64), settings, eps,
        )  # fmt: skip
        types = np.array([TYPES[(side, 0)], TYPES[(side, 1)]], dtype=object)[kind]
        parts.append((types, side, source, sign * lvl, sign * ext, b, t, inv, order))
    return _merge(parts)


def _merge(parts: list[tuple]) -> TrapEvents:
    if not parts:
        empty_i, empty_o = np.empty(0, np.int64), np.empty(0, dtype=object)
        return TrapEvents(empty_o, empty_o, empty_o, np.empty(0), np.empty(0), *[empty_i] * 3)
    cat = [np.concatenate(x) for x in zip(*[p[:1] + p[3:8] for p in parts], strict=True)]
    side = np.concatenate([np.full(len(p[5]), p[1], dtype=object) for p in parts])
    source = np.concatenate([np.full(len(p[5]), p[2], dtype=object) for p in parts])
    order = np.concatenate([np.full(len(p[5]), p[8]) for p in parts])
    types, lvl, ext, b, t, inv = cat
    idx = np.lexsort((order, b, t))
    return TrapEvents(
        types[idx], side[idx], source[idx], lvl[idx], ext[idx], b[idx], t[idx], inv[idx]
    )


def rolling_levels(high: np.ndarray, low: np.ndarray, lookback: int) -> tuple[np.ndarray, ...]:
    """Highest high and lowest low of the `lookback` bars before each bar (NaN before that)."""
    hi, lo = np.full(len(high), np.nan), np.full(len(low), np.nan)
    if len(high) > lookback:
        win_h = np.lib.stride_tricks.sliding_window_view(high, lookback)[:-1]
        win_l = np.lib.stride_tricks.sliding_window_view(low, lookback)[:-1]
        hi[lookback:], lo[lookback:] = win_h.max(axis=1), win_l.min(axis=1)
    return hi, lo


def prior_day_levels(
    open_ms: np.ndarray, high: np.ndarray, low: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """High and low of the UTC day before each bar's open day (NaN where it has no candles)."""
    day = open_ms // DAY_MS
    if len(day) == 0:
        return np.empty(0), np.empty(0)
    starts = np.flatnonzero(np.r_[True, np.diff(day) != 0])
    days = day[starts]
    pos = np.searchsorted(days, day - 1)
    ok = (pos < len(days)) & (days[np.minimum(pos, len(days) - 1)] == day - 1)
    pos = np.minimum(pos, len(days) - 1)
    hi = np.where(ok, np.maximum.reduceat(high, starts)[pos], np.nan)
    lo = np.where(ok, np.minimum.reduceat(low, starts)[pos], np.nan)
    return hi, lo


def volume_ratio(volume: np.ndarray, bars: np.ndarray, window: int) -> np.ndarray:
    """volume[b] / mean volume of the `window` bars before b (fewer early on; NaN at bar 0)."""
    csum = np.r_[0.0, np.cumsum(np.nan_to_num(volume))]
    start = np.maximum(bars - window, 0)
    count = bars - start
    avg = (csum[bars] - csum[start]) / np.where(count > 0, count, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((count > 0) & (avg > 0), volume[bars] / avg, np.nan)
