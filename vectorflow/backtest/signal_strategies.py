"""Strategies on this project's own signals: value-area reversion, trap fade, regime trend.

Each takes the bars and the signal frame (the `signals` view's columns, one row per bar, aligned
to the bars' close times). A signal row describes the market as of that bar's close (the TPO
levels of the last completed session, the latest confirmed trap, the regime label), so a
strategy reading row t and filling at close t uses nothing later.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vectorflow.backtest.strategies import (
    Signals,
    Strategy,
    _first_bar,
    _params,
    moving_averages,
    register,
)

#: Trap types faded long / short (vectorflow.signals.traps names them).
FADE_LONG = {"bear_trap": False, "sweep_low": True}  # value: only with sweeps=True
FADE_SHORT = {"bull_trap": False, "sweep_high": True}


def _levels(signals: pd.DataFrame, *names: str) -> list[np.ndarray]:
    return [pd.to_numeric(signals[n], errors="coerce").to_numpy(np.float64) for n in names]


def _recently(flags: np.ndarray, bars: int) -> np.ndarray:
    """True where `flags` was true on any of the `bars` bars before (the bar itself excluded)."""
    shifted = pd.Series(flags, dtype=float).shift(1)
    return shifted.rolling(bars, min_periods=1).max().fillna(0).to_numpy() > 0


def value_area_reversion(bars: pd.DataFrame, signals: pd.DataFrame, *, lookback, target) -> Signals:
    """Fade a move outside the value area: long when price closes back above VAL after closing
    below it within `lookback` bars, out at `target` of the way to POC; short the mirror at VAH."""
    lookback, target = _params(lookback, kind=np.int64), _params(target)
    close = bars["close"].to_numpy()
    poc, vah, val = _levels(signals, "tpo_poc", "tpo_vah", "tpo_val")
    with np.errstate(invalid="ignore"):
        below, above = close < val, close > vah
        came_back = {
            int(n): (_recently(below, int(n)), _recently(above, int(n)))
            for n in np.unique(lookback)
        }
        back_up = np.column_stack([came_back[int(n)][0] for n in lookback])
        back_down = np.column_stack([came_back[int(n)][1] for n in lookback])
        c = close[:, None]
        long_exit_at = val[:, None] + target * (poc - val)[:, None]
        short_exit_at = vah[:, None] - target * (vah - poc)[:, None]
        return Signals(
            _first_bar(back_up & (c >= val[:, None]) & (c < poc[:, None])),
            c >= long_exit_at,
            _first_bar(back_down & (c <= vah[:, None]) & (c > poc[:, None])),
            c <= short_exit_at,
        )


def _trap_age(bars: pd.DataFrame, times: pd.Series) -> np.ndarray:
    """Bars since each row's last trap was confirmed (0 on the confirming bar; NaN without one)."""
    when = pd.to_datetime(times, errors="coerce").to_numpy("datetime64[ns]")
    index = bars.index.to_numpy("datetime64[ns]")
    pos = np.searchsorted(index, when)
    age = np.arange(len(index), dtype=np.float64) - pos
    # no event, an event from before these bars (its age is unknown here), or a time after the
    # row's own bar (which a signal without look-ahead never has): not a fresh event
    age[np.isnat(when) | (when < index[:1]) | (age < 0)] = np.nan
    return age


def _first_per_event(condition: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Only the first bar on which `condition` holds for each trap event."""
    hits = pd.Series(condition.astype(np.int64)).groupby(event).cumsum().to_numpy()
    return condition & (hits == 1)


def _fade_entries(kind, table, sweeps, age, max_age, beyond, event) -> np.ndarray:
    wanted = np.array([k in table and (sweeps or not table[k]) for k in kind])
    with np.errstate(invalid="ignore"):
        condition = wanted & (age <= max_age) & beyond
    return _first_per_event(condition, event)


def trap_fade(bars: pd.DataFrame, signals: pd.DataFrame, *, hold, max_age, sweeps) -> Signals:
    """Enter against a confirmed trap within `max_age` bars of its confirmation (long after a bear
    trap, short after a bull trap; sweeps too with `sweeps`), out after `hold` bars or when the
    close is back beyond the trap level."""
    hold, max_age = _params(hold, kind=np.int64), _params(max_age, kind=np.int64)
    sweeps = _params(sweeps, kind=bool)
    close = bars["close"].to_numpy()
    (level,) = _levels(signals, "last_trap_level")
    kind = signals["last_trap_type"].astype(object).where(signals["last_trap_type"].notna(), "")
    kind = kind.to_numpy()
    age = _trap_age(bars, signals["last_trap_time"])
    event = pd.to_datetime(signals["last_trap_time"], errors="coerce").to_numpy("int64")
    with np.errstate(invalid="ignore"):
        above, below = close > level, close < level
    cache: dict = {}
    cols: list[list[np.ndarray]] = [[], [], [], []]
    for h, a, s in zip(hold.tolist(), max_age.tolist(), sweeps.tolist(), strict=True):
        if (a, s) not in cache:
            cache[(a, s)] = (
                _fade_entries(kind, FADE_LONG, s, age, a, above, event),
                _fade_entries(kind, FADE_SHORT, s, age, a, below, event),
            )
        long_in, short_in = cache[(a, s)]
        for i, (entry, wrong_side) in enumerate(((long_in, below), (short_in, above))):
            timed_out = np.zeros_like(entry)
            timed_out[h:] = entry[: len(entry) - h]
            cols[2 * i].append(entry)
            cols[2 * i + 1].append(timed_out | wrong_side)
    return Signals(*(np.column_stack(c) for c in cols))


def regime_trend(bars: pd.DataFrame, signals: pd.DataFrame, *, fast, slow, high_vol) -> Signals:
    """Moving-average trend only in `trend_*` regimes: long while the regime is `trend_up` and the
    fast SMA is above the slow one, short in `trend_down` below; `high_vol=False` stays out of
    high-volatility regimes."""
    fast, slow = _params(fast, kind=np.int64), _params(slow, kind=np.int64)
    high_vol = _params(high_vol, kind=bool)
    label = signals["regime"].astype(object).where(signals["regime"].notna(), "").astype(str)
    up = label.str.startswith("trend_up").to_numpy()[:, None]
    down = label.str.startswith("trend_down").to_numpy()[:, None]
    calm = (~label.str.endswith("|high_vol").to_numpy())[:, None] | high_vol[None, :]
    ma, fast_col, slow_col = moving_averages(bars["close"], fast, slow)
    fast_ma, slow_ma = ma[:, fast_col], ma[:, slow_col]
    with np.errstate(invalid="ignore"):
        long_on = up & calm & (fast_ma > slow_ma)
        short_on = down & calm & (fast_ma < slow_ma)
    return Signals(_first_bar(long_on), ~long_on, _first_bar(short_on), ~short_on)


register(
    Strategy(
        "value_area_reversion",
        value_area_reversion,
        "value-area reversion (fade VAH/VAL excursions back to POC)",
        {
            "default": {"lookback": [1, 3, 6], "target": [0.5, 1.0]},
            "small": {"lookback": [3], "target": [0.5, 1.0]},
        },
        signal_columns=("tpo_poc", "tpo_vah", "tpo_val"),
    )
)
register(
    Strategy(
        "trap_fade",
        trap_fade,
        "trap fade (enter against confirmed bull/bear traps)",
        {
            "default": {"hold": [3, 6, 12, 24], "max_age": [0, 2], "sweeps": [False, True]},
            "small": {"hold": [6, 12], "max_age": [0], "sweeps": [False]},
        },
        signal_columns=("last_trap_type", "last_trap_time", "last_trap_level"),
    )
)
register(
    Strategy(
        "regime_trend",
        regime_trend,
        "regime-filtered trend (SMA trend only in trend_* regimes)",
        {
            "default": {"fast": [10, 20], "slow": [50, 100], "high_vol": [True, False]},
            "small": {"fast": [20], "slow": [50], "high_vol": [True]},
        },
        signal_columns=("regime",),
        valid=lambda p: p["fast"] < p["slow"],
    )
)
