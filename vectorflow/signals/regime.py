"""Regime: Wilder ADX / +DI / −DI and ATR (equal to TA-Lib's), NATR, its rank, the label.

One numba-compiled pass computes the four indicators. Definitions, the trend hysteresis and the
volatility rank: docs/signals.md#regime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from vectorflow.errors import InvalidInput

TREND_NAMES = ("", "trend_up", "trend_down", "range")
VOL_NAMES = ("low_vol", "normal_vol", "high_vol")
INSUFFICIENT = "insufficient_data"
LABELS = np.array(
    [INSUFFICIENT] + [f"{t}|{v}" for t in TREND_NAMES[1:] for v in VOL_NAMES], dtype=object
)


@dataclass(frozen=True)
class RegimeSettings:
    """Regime parameters (defaults: docs/signals.md)."""

    period: int = 14
    trend_on: float = 25.0
    range_on: float = 20.0
    min_bars: int = 250
    rank_days: float = 90.0
    high_vol: float = 0.80
    low_vol: float = 0.20

    def __post_init__(self) -> None:
        if self.period < 2:
            raise InvalidInput(f"regime period {self.period!r} must be at least 2")
        if self.range_on > self.trend_on:
            raise InvalidInput("regime range_on must not exceed trend_on")


@dataclass(frozen=True)
class Wilder:
    """Wilder indicators per bar (NaN before their first value)."""

    atr: np.ndarray
    plus_di: np.ndarray
    minus_di: np.ndarray
    adx: np.ndarray


@njit(cache=True)
def _true_range(high: float, low: float, prev_close: float) -> float:
    out = high - low
    up, down = abs(high - prev_close), abs(low - prev_close)
    if up > out:
        out = up
    if down > out:
        out = down
    return out


@njit(cache=True)
def _wilder(high, low, close, n, atr, pdi, mdi, adx):
    size = len(close)
    atr[:], pdi[:], mdi[:], adx[:] = np.nan, np.nan, np.nan, np.nan
    pdm = mdm = tr = tr_sum = sum_dx = adx_prev = 0.0
    for i in range(1, size):
        diff_p, diff_m = high[i] - high[i - 1], low[i - 1] - low[i]
        move_p = diff_p if (diff_p > 0 and diff_p > diff_m) else 0.0
        move_m = diff_m if (diff_m > 0 and diff_p < diff_m) else 0.0
        t = _true_range(high[i], low[i], close[i - 1])
        if i < n:
            pdm, mdm, tr, tr_sum = pdm + move_p, mdm + move_m, tr + t, tr_sum + t
            continue
        if i == n:
            atr[i] = (tr_sum + t) / n
        else:
            atr[i] = (atr[i - 1] * (n - 1) + t) / n
        pdm, mdm, tr = pdm - pdm / n + move_p, mdm - mdm / n + move_m, tr - tr / n + t
        dx = -1.0  # no DX this bar (no range, or no directional movement at all)
        if tr == 0.0:
            pdi[i], mdi[i] = 0.0, 0.0
        else:
            p, m = 100.0 * (pdm / tr), 100.0 * (mdm / tr)
            pdi[i], mdi[i] = p, m
            if m + p != 0.0:
                dx = 100.0 * (abs(m - p) / (m + p))
        if i < 2 * n - 1:
            sum_dx += max(dx, 0.0)
            continue
        if i == 2 * n - 1:
            adx_prev = (sum_dx + max(dx, 0.0)) / n
        elif dx >= 0.0:
            adx_prev = (adx_prev * (n - 1) + dx) / n
        adx[i] = adx_prev


def wilder(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> Wilder:
    """ATR, +DI, −DI and ADX (Wilder, TA-Lib's seeding) of float64 price arrays."""
    h, lo, c = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
    out = [np.empty(len(c)) for _ in range(4)]
    _wilder(h, lo, c, int(period), *out)
    return Wilder(*out)


@njit(cache=True)
def _rank_at(values, window, at, out):
    for k in range(len(at)):
        j = at[k]
        v = values[j]
        below = ties = count = 0
        for i in range(max(0, j - window), j):
            x = values[i]
            count += x == x
            below += x < v
            ties += x == v
        out[k] = (below + 0.5 * ties) / count if (count > 0 and v == v) else np.nan


def percentile_rank(values: np.ndarray, window: int, at: np.ndarray | None = None) -> np.ndarray:
    """Rank (0–1) of values[j] among the `window` values before j, ties half; at `at` indices."""
    vals = np.ascontiguousarray(values, dtype=np.float64)
    idx = np.arange(len(vals)) if at is None else np.asarray(at, dtype=np.int64)
    out = np.empty(len(idx))
    _rank_at(vals, int(window), idx, out)
    return out


@njit(cache=True)
def _trend(adx, plus_di, minus_di, trend_on, range_on, out):
    state = 0
    for i in range(len(adx)):
        a = adx[i]
        if a != a:
            out[i] = 0
            continue
        if a >= trend_on:
            state = 1 if plus_di[i] > minus_di[i] else 2
        elif a <= range_on or state == 0:
            state = 3
        out[i] = state


def trend_states(ind: Wilder, settings: RegimeSettings = RegimeSettings()) -> np.ndarray:
    """Trend state per bar with hysteresis: 0 none yet, 1 up, 2 down, 3 range."""
    out = np.empty(len(ind.adx), dtype=np.int8)
    _trend(ind.adx, ind.plus_di, ind.minus_di, settings.trend_on, settings.range_on, out)
    return out


def labels(
    trend: np.ndarray, rank: np.ndarray, bars: np.ndarray, settings: RegimeSettings
) -> np.ndarray:
    """Regime labels (`trend_up|high_vol` …, `insufficient_data`) from states, ranks, bar counts."""
    vol = np.where(rank >= settings.high_vol, 2, np.where(rank <= settings.low_vol, 0, 1))
    ok = (bars >= settings.min_bars) & (trend > 0) & ~np.isnan(rank)
    code = np.where(ok, (trend.astype(np.int64) - 1) * 3 + vol + 1, 0)
    return LABELS[code]


def rank_window(step_ms: int, settings: RegimeSettings) -> int:
    """Bars in the NATR rank window (90 days of the timeframe by default)."""
    return max(1, int(round(settings.rank_days * 86_400_000 / step_ms)))
