"""Parameter grids as signal columns, evaluated in chunks so peak memory stays bounded.

A grid is a list of parameter sets (dicts keyed by the strategy function's parameter names, plus
`sl_stop` / `tp_stop` when stops are part of the grid). A chunk of k sets becomes k columns: the
strategy computes their signals at once (indicators shared by the sets that use them), the
engine (`vectorflow.backtest.engine`) simulates and measures each column in one numba pass, and
only their metrics (one row per set, the numbers vectorbt's Portfolio gives) and per-block
return sums are kept before the next chunk. Columns never interact (no shared cash, no
grouping), so the chunk size changes memory and time, never a number. The leaders' runs, whose
trades are stored, still go through vectorbt itself (`simulate_params`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vectorflow.backtest.library import StrategyError, where
from vectorflow.backtest.metrics import COUNT_METRICS, METRICS
from vectorflow.backtest.overfitting import DEFAULT_BLOCKS
from vectorflow.backtest.portfolio import PortfolioSettings, simulate
from vectorflow.backtest.strategies import Signals, Strategy, as_signals
from vectorflow.errors import InvalidInput

log = logging.getLogger(__name__)

STOP_PARAMS: tuple[str, ...] = ("sl_stop", "tp_stop")
GRIDS: tuple[str, ...] = ("default", "small")

#: Peak bytes per (bar x parameter set) of one chunk: the strategy's per-set indicator arrays
#: and signals, and their packed copy for the engine. Measured with tracemalloc on the default
#: grids (MA cross ~8 B, RSI ~28 B, Bollinger ~70 B: vectorbt's bands per set); rounded up.
BYTES_PER_CELL = 80


def param_grid(
    strategy: Strategy,
    grid: str = "default",
    *,
    sl_stop: Sequence[float] = (),
    tp_stop: Sequence[float] = (),
    values: dict[str, Sequence] | None = None,
) -> list[dict]:
    """Every parameter set of a named grid (or of `values`), times the given stop levels."""
    if values is None:
        if grid not in strategy.grids:
            raise InvalidInput(f"unknown grid {grid!r}; expected one of {', '.join(GRIDS)}")
        values = dict(strategy.grids[grid])
    else:
        unknown = set(values) - set(strategy.params) - set(STOP_PARAMS)
        if unknown:
            raise InvalidInput(f"{strategy.name} has no parameter {', '.join(sorted(unknown))}")
        values = dict(values)
    if sl_stop:
        values["sl_stop"] = list(sl_stop)
    if tp_stop:
        values["tp_stop"] = list(tp_stop)
    combos = [
        dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())
    ]
    if strategy.valid is not None:
        combos = [c for c in combos if strategy.valid(c)]
    return combos


def chunk_size(n_bars: int, memory_budget_mb: float) -> int:
    """How many parameter sets one chunk may hold within the memory budget (at least one)."""
    return max(1, int(memory_budget_mb * 2**20 // (max(n_bars, 1) * BYTES_PER_CELL)))


def strategy_signals(
    strategy: Strategy, bars: pd.DataFrame, combos: list[dict], signals: pd.DataFrame | None
) -> Signals:
    """The strategy's signals for `combos` (one column each) over `bars`; StrategyError (with
    the file and line) when the strategy raises or returns something else."""
    params = {name: [c[name] for c in combos] for name in strategy.params}
    args = (bars,)
    if strategy.needs_signals:
        if signals is None:
            raise InvalidInput(f"{strategy.name} needs the signal columns, and there are none")
        args = (bars, signals)
    try:
        return as_signals(strategy.func(*args, **params), len(bars), len(combos))
    except InvalidInput:
        raise
    except Exception as exc:  # the strategy's own code: fail its unit, say where
        raise StrategyError(
            f"{strategy.name} failed: {type(exc).__name__}: {exc} ({where(exc, strategy.source)})"
        ) from exc


def _stops(combos: list[dict]) -> dict[str, np.ndarray]:
    """The stop levels of every set (NaN: none), for the stops that are part of the grid."""
    return {
        k: np.array([c.get(k, np.nan) for c in combos], dtype=np.float64)
        for k in STOP_PARAMS
        if any(k in c for c in combos)
    }


def simulate_params(
    strategy: Strategy,
    bars: pd.DataFrame,
    combos: list[dict],
    settings: PortfolioSettings,
    *,
    signals: pd.DataFrame | None = None,
    start: int = 0,
):
    """A vectorbt Portfolio of `combos` over bars[start:], signals computed from bar 0 (warm-up)."""
    sig = strategy_signals(strategy, bars, combos, signals)
    if start:
        sig = Signals(*(None if s is None else s[start:] for s in sig))
        bars = bars.iloc[start:]
    return simulate(bars, sig, settings, **_stops(combos))


@dataclass(frozen=True)
class GridResult:
    """The metrics of every parameter set of a grid, in grid order."""

    combos: list[dict]
    metrics: pd.DataFrame  # vectorbt's raw numbers, row i = combos[i]
    chunk_size: int
    chunks: int
    blocks: np.ndarray  # per-block return sums, sets x blocks x 5 (overfitting.block_sums)


def run_grid(
    strategy: Strategy,
    bars: pd.DataFrame,
    combos: list[dict],
    settings: PortfolioSettings,
    *,
    signals: pd.DataFrame | None = None,
    memory_budget_mb: float = 1024.0,
    chunk: int | None = None,
    blocks: int = DEFAULT_BLOCKS,
) -> GridResult:
    """Metrics of every parameter set over `bars`, `chunk` sets at a time (default: from memory)."""
    if not combos:
        raise InvalidInput(f"{strategy.name}: the grid is empty")
    from vectorflow.backtest.engine import simulate_grid  # numba + vectorbt: loaded when run

    size = chunk or chunk_size(len(bars), memory_budget_mb)
    metrics, sums = [], []
    for first in range(0, len(combos), size):
        part = combos[first : first + size]
        sig = strategy_signals(strategy, bars, part, signals)
        values, block_sums = simulate_grid(bars, sig, settings, blocks=blocks, **_stops(part))
        del sig
        metrics.append(values)
        sums.append(block_sums)
    frame = pd.DataFrame(np.concatenate(metrics), columns=list(METRICS))
    frame = frame.astype({k: np.int64 for k in COUNT_METRICS})
    log.debug(
        "%s: %d parameter sets in %d chunk(s) of %d", strategy.name, len(combos), len(metrics), size
    )
    return GridResult(list(combos), frame, size, len(metrics), np.concatenate(sums))
