"""Strategies: pure functions of bars (and signals) and parameters returning entry/exit signals.

Every strategy takes the bars (a DataFrame with `open, high, low, close, volume`, one row per
closed candle, indexed by close time) and one array per parameter holding a value per column:
called with k parameter sets it returns k columns of signals at once (a vectorbt column grid).
Signal strategies also take the signal frame (columns of the `signals` view, one row per bar,
aligned to the bars). A row's signals use only that bar and earlier ones, and orders fill at
that bar's close, so nothing is known before it could be.

Strategies that can trade both sides return short entries/exits as well; the portfolio uses
them on perpetuals (`linear`) and ignores them on spot (long only).

A strategy written for one parameter set at a time (scalar parameters, one column of signals)
becomes a grid strategy with `per_set`. User strategies (`vectorflow.backtest.library`) follow
the same contract; what any strategy returns goes through `as_signals`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from vectorflow.errors import InvalidInput


class Signals(NamedTuple):
    """Boolean (bars x parameter sets) arrays; the short ones are None for long-only strategies."""

    entries: np.ndarray
    exits: np.ndarray
    short_entries: np.ndarray | None = None
    short_exits: np.ndarray | None = None


@dataclass(frozen=True)
class Strategy:
    """A strategy function with its parameter grids and the signal columns it reads."""

    name: str
    func: Callable[..., Signals]
    summary: str
    grids: Mapping[str, Mapping[str, Sequence]]  # "default" and "small": values per parameter
    signal_columns: tuple[str, ...] = ()
    valid: Callable[[dict], bool] | None = field(default=None, compare=False)
    takes_signals: bool = False  # also given the signal frame (implied by signal_columns)
    source: str | None = None  # "file:line" of a user strategy's function
    error: str | None = None  # why a user strategy cannot run: its units fail with this

    @property
    def params(self) -> tuple[str, ...]:
        """The strategy function's parameter names, in grid order."""
        return tuple(self.grids["default"])

    @property
    def needs_signals(self) -> bool:
        """Whether the strategy is called with the signal frame."""
        return self.takes_signals or bool(self.signal_columns)


def _signal_array(values, n_bars: int, n_sets: int, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype != np.bool_:
        array = np.nan_to_num(array.astype(np.float64), nan=0.0) != 0  # NaN: no signal
    if array.ndim == 1 and n_sets == 1:
        array = array[:, None]
    if array.shape != (n_bars, n_sets):
        raise ValueError(
            f"{what} has shape {array.shape}; expected (bars, parameter sets) = {(n_bars, n_sets)}"
        )
    return array


def as_signals(result, n_bars: int, n_sets: int) -> Signals:
    """What a strategy returned as Signals: (entries, exits) or (entries, exits, short_entries,
    short_exits), arrays or frames of (bars x parameter sets), booleans or numbers (0, NaN: no)."""
    if not isinstance(result, tuple) or len(result) not in (2, 4):
        raise ValueError(
            f"returned {type(result).__name__}; expected (entries, exits) or (entries, exits, "
            "short_entries, short_exits)"
        )
    parts = list(result) + [None] * (4 - len(result))
    if (parts[2] is None) != (parts[3] is None):
        raise ValueError("returned short entries without short exits, or the reverse")
    names = ("entries", "exits", "short_entries", "short_exits")
    return Signals(
        *(
            None if v is None else _signal_array(v, n_bars, n_sets, k)
            for k, v in zip(names, parts, strict=True)
        )
    )


def per_set(func: Callable) -> Callable:
    """A strategy written for one parameter set (scalar parameters, one column of signals) as a
    grid strategy: called once per set, its columns side by side."""

    @functools.wraps(func)
    def grid(bars, *frames, **params):
        """The wrapped function once per parameter set, its columns side by side."""
        sets = len(next(iter(params.values()))) if params else 1
        columns = [
            as_signals(func(bars, *frames, **{k: _plain(v[j]) for k, v in params.items()}),
                       len(bars), 1)
            for j in range(sets)
        ]  # fmt: skip
        stacked = (None if c[0] is None else np.hstack(c) for c in zip(*columns, strict=True))
        return Signals(*stacked)

    return grid


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------------- helpers


def _matrix(values, n_rows: int) -> np.ndarray:
    """An indicator output as a 2-D float array (bars x columns)."""
    return np.asarray(values, dtype=np.float64).reshape(n_rows, -1)


def _crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """vectorbt's crossover: True on the bar where `a` goes above `b` (NaN resets)."""
    from vectorbt.generic.nb import crossed_above_nb

    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return crossed_above_nb(np.ascontiguousarray(a), np.ascontiguousarray(b))


def _shared(windows: np.ndarray, compute) -> tuple[np.ndarray, np.ndarray]:
    """(compute(distinct windows): one indicator column per distinct window, the column of each
    set): an indicator is computed once per window, however many sets use it."""
    distinct, column = np.unique(windows, return_inverse=True)
    return compute(distinct.tolist()), column.reshape(-1)


def moving_averages(close: pd.Series, *windows: np.ndarray) -> tuple[np.ndarray, ...]:
    """vectorbt's simple moving averages, one column per distinct window, and for each of
    `windows` the column of each of its sets."""
    import vectorbt as vbt

    sizes = [len(w) for w in windows]
    ma, column = _shared(np.concatenate(windows), lambda w: _matrix(vbt.MA.run(close, window=w).ma,
                                                                    len(close)))  # fmt: skip
    return ma, *np.split(column, np.cumsum(sizes)[:-1])


def _per_window(series: np.ndarray, windows: np.ndarray, func) -> np.ndarray:
    """func(series, window) for each unique window, laid out as one column per parameter set."""
    cache = {int(w): func(series, int(w)) for w in np.unique(windows)}
    return np.column_stack([cache[int(w)] for w in windows])


def _rolling(series: np.ndarray, window: int, how: str) -> np.ndarray:
    """Rolling max/min of the `window` bars before each bar (the bar itself excluded)."""
    rolled = getattr(pd.Series(series).rolling(window, min_periods=window), how)()
    return rolled.shift(1).to_numpy()


def _first_bar(condition: np.ndarray) -> np.ndarray:
    """True where a condition becomes true (it was false, or unknown, on the bar before)."""
    before = np.zeros_like(condition)
    before[1:] = condition[:-1]
    return condition & ~before


def _params(values, *, kind=np.float64) -> np.ndarray:
    return np.atleast_1d(np.asarray(values, dtype=kind))


# ---------------------------------------------------------------------------------- strategies


def ma_cross(bars: pd.DataFrame, *, fast, slow) -> Signals:
    """Long when the fast simple moving average crosses above the slow one; short the mirror."""
    from vectorflow.backtest.engine import crossed_above_columns_nb

    fast, slow = _params(fast, kind=np.int64), _params(slow, kind=np.int64)
    ma, fast_col, slow_col = moving_averages(bars["close"], fast, slow)
    up = crossed_above_columns_nb(ma, fast_col, ma, slow_col)
    down = crossed_above_columns_nb(ma, slow_col, ma, fast_col)
    return Signals(up, down, down, up)


def rsi_reversion(bars: pd.DataFrame, *, window, lower, upper) -> Signals:
    """Long when RSI crosses below `lower`, out when it crosses above `upper`; short the mirror."""
    import vectorbt as vbt

    window = _params(window, kind=np.int64)
    lower, upper = _params(lower), _params(upper)
    close, n = bars["close"], len(bars)
    rsi, column = _shared(window, lambda w: _matrix(vbt.RSI.run(close, window=w).rsi, n))
    rsi = rsi[:, column]
    oversold, overbought = _crossed_above(lower, rsi), _crossed_above(rsi, upper)
    return Signals(oversold, overbought, overbought, oversold)


def bollinger_breakout(bars: pd.DataFrame, *, window, alpha) -> Signals:
    """Long when the close crosses above the upper band, out below the middle; short the mirror."""
    import vectorbt as vbt

    window, alpha = _params(window, kind=np.int64), _params(alpha)
    bands = vbt.BBANDS.run(bars["close"], window=window.tolist(), alpha=alpha.tolist())
    n = len(bars)
    close = bars["close"].to_numpy()[:, None]
    upper, middle, lower = (_matrix(getattr(bands, k), n) for k in ("upper", "middle", "lower"))
    return Signals(
        _crossed_above(close, upper),
        _crossed_above(middle, close),
        _crossed_above(lower, close),
        _crossed_above(close, middle),
    )


def donchian_breakout(bars: pd.DataFrame, *, window, exit_window) -> Signals:
    """Long above the highest high of the previous `window` bars, out below the lowest low of the
    previous `exit_window` bars (turtle rules); short the mirror."""
    window, exit_window = _params(window, kind=np.int64), _params(exit_window, kind=np.int64)
    high, low = bars["high"].to_numpy(), bars["low"].to_numpy()
    close = bars["close"].to_numpy()[:, None]
    with np.errstate(invalid="ignore"):
        upper = _per_window(high, window, lambda s, w: _rolling(s, w, "max"))
        lower = _per_window(low, window, lambda s, w: _rolling(s, w, "min"))
        exit_low = _per_window(low, exit_window, lambda s, w: _rolling(s, w, "min"))
        exit_high = _per_window(high, exit_window, lambda s, w: _rolling(s, w, "max"))
        return Signals(
            _first_bar(close > upper),
            close < exit_low,
            _first_bar(close < lower),
            close > exit_high,
        )


STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add a strategy to the library (its name must be new)."""
    if strategy.name in STRATEGIES:
        raise ValueError(f"strategy {strategy.name!r} is already registered")
    STRATEGIES[strategy.name] = strategy
    return strategy


register(
    Strategy(
        "ma_cross",
        ma_cross,
        "moving-average cross (SMA fast/slow)",
        {
            "default": {
                "fast": [5, 10, 15, 20, 30, 40, 50],
                "slow": [20, 30, 50, 75, 100, 150, 200],
            },
            "small": {"fast": [10, 20], "slow": [50, 100]},
        },
        valid=lambda p: p["fast"] < p["slow"],
    )
)
register(
    Strategy(
        "rsi_reversion",
        rsi_reversion,
        "RSI mean reversion",
        {
            "default": {"window": [7, 14, 21], "lower": [20, 25, 30], "upper": [70, 75, 80]},
            "small": {"window": [14], "lower": [25, 30], "upper": [70, 75]},
        },
    )
)
register(
    Strategy(
        "bollinger_breakout",
        bollinger_breakout,
        "Bollinger band breakout",
        {
            "default": {"window": [10, 20, 30, 50], "alpha": [1.5, 2.0, 2.5, 3.0]},
            "small": {"window": [20], "alpha": [2.0, 2.5]},
        },
    )
)
register(
    Strategy(
        "donchian_breakout",
        donchian_breakout,
        "Donchian channel breakout",
        {
            "default": {"window": [10, 20, 40, 55], "exit_window": [5, 10, 20]},
            "small": {"window": [20, 55], "exit_window": [10]},
        },
        valid=lambda p: p["exit_window"] < p["window"],
    )
)


def get_strategy(name: str) -> Strategy:
    """The registered strategy called `name`; InvalidInput names an unknown one."""
    from vectorflow.backtest import signal_strategies  # noqa: F401 - registers the signal ones

    try:
        return STRATEGIES[name]
    except KeyError:
        raise InvalidInput(
            f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}"
        ) from None


def all_strategies() -> list[Strategy]:
    """Every registered strategy, price-based first."""
    from vectorflow.backtest import signal_strategies  # noqa: F401 - registers the signal ones

    return list(STRATEGIES.values())
