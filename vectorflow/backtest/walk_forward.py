"""In-sample / out-of-sample windows, and the evaluation of a strategy's grid in each of them.

A window is a run of consecutive bars split in two: the in-sample part picks the parameters (the
whole grid is run there and ranked by one metric: rank 1 is the choice), the out-of-sample part
that follows it judges the choice on bars it never saw; the next `leaders - 1` sets by rank run
there too, for inspection only (nothing is chosen among out-of-sample results). The choice's
overfitting statistics (DSR, PBO: `overfitting`) come from the in-sample grid alone.
`holdout_window` is one such split of all bars; `rolling_windows` slides it forward by the
out-of-sample length, so the out-of-sample parts tile the end of the data without overlapping
each other or their own in-sample part. `chain` joins the choices' out-of-sample parts.

Out-of-sample signals are computed from the start of the window (the in-sample bars serve as
indicator warm-up, which uses only earlier bars) and the portfolio starts flat with fresh cash
at the first out-of-sample bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vectorflow.backtest.grid import GridResult, run_grid, simulate_params
from vectorflow.backtest.metrics import rank_values, raw_metrics
from vectorflow.backtest.overfitting import DEFAULT_BLOCKS, ChoiceStatistics, choice_statistics
from vectorflow.backtest.portfolio import PortfolioSettings
from vectorflow.backtest.strategies import Strategy
from vectorflow.errors import InvalidInput
from vectorflow.timeframes import timeframe_ms

MIN_SAMPLE_BARS = 2  # vectorbt needs two bars for a return


@dataclass(frozen=True)
class Window:
    """Bar positions (half-open) of one in-sample part and the out-of-sample part after it."""

    index: int
    in_start: int
    in_end: int
    out_start: int
    out_end: int

    @property
    def has_out(self) -> bool:
        """False for a full-sample run (no bars left out)."""
        return self.out_end > self.out_start


def days_to_bars(days: float, timeframe: str) -> int:
    """Whole bars of `timeframe` in `days` days."""
    return int(days * 86_400_000 // timeframe_ms(timeframe))


def holdout_window(n_bars: int, in_sample_fraction: float) -> Window:
    """The first fraction of the bars in sample, the rest out (1.0: all in, a `full` run)."""
    cut = n_bars if in_sample_fraction >= 1 else int(round(n_bars * in_sample_fraction))
    if cut < MIN_SAMPLE_BARS or (cut < n_bars and n_bars - cut < MIN_SAMPLE_BARS):
        raise InvalidInput(
            f"{n_bars} bars are too few to split at {in_sample_fraction:g} "
            f"(each part needs {MIN_SAMPLE_BARS})"
        )
    return Window(0, 0, cut, cut, n_bars)


def rolling_windows(n_bars: int, in_bars: int, out_bars: int, max_windows: int) -> list[Window]:
    """The latest `max_windows` windows, oldest first; the last out-of-sample part ends the data."""
    if in_bars < MIN_SAMPLE_BARS or out_bars < MIN_SAMPLE_BARS:
        raise InvalidInput(
            f"walk-forward windows of {in_bars} in-sample and {out_bars} out-of-sample bars are "
            f"too short (each needs {MIN_SAMPLE_BARS})"
        )
    spans = []
    end = n_bars
    while end - out_bars - in_bars >= 0 and len(spans) < max_windows:
        spans.append((end - out_bars - in_bars, end - out_bars, end))
        end -= out_bars
    if not spans:
        raise InvalidInput(
            f"{n_bars} bars are fewer than one walk-forward window ({in_bars} in-sample + "
            f"{out_bars} out-of-sample bars)"
        )
    return [Window(i, a, b, b, c) for i, (a, b, c) in enumerate(reversed(spans))]


@dataclass
class WindowResult:
    """A strategy's grid in one window: every set in sample, the leaders in and out of sample."""

    window: Window
    grid: GridResult  # in-sample metrics of every parameter set
    order: np.ndarray  # grid positions, best first by the metric
    leaders: list[int]  # grid positions of the leaders, best first
    in_portfolio: object  # vectorbt Portfolio of the leaders over the in-sample bars
    out_portfolio: object | None  # ... over the out-of-sample bars (None for a full run)
    out_metrics: pd.DataFrame | None  # vectorbt's metrics of out_portfolio, one row per leader
    stats: ChoiceStatistics  # trials, DSR of the choice (leaders[0]), PBO of the grid

    @property
    def chosen(self) -> int:
        """The grid position of the in-sample choice (rank 1)."""
        return self.leaders[0]


def _part(frame: pd.DataFrame | None, start: int, end: int) -> pd.DataFrame | None:
    return None if frame is None else frame.iloc[start:end]


def evaluate_window(
    strategy: Strategy,
    bars: pd.DataFrame,
    combos: list[dict],
    window: Window,
    settings: PortfolioSettings,
    *,
    signals: pd.DataFrame | None = None,
    metric: str = "sharpe_ratio",
    leaders: int = 3,
    memory_budget_mb: float = 1024.0,
    blocks: int = DEFAULT_BLOCKS,
) -> WindowResult:
    """Run the grid in sample, rank it by `metric`, and run the best `leaders` out of sample."""
    w = window
    in_bars, in_signals = bars.iloc[w.in_start : w.in_end], _part(signals, w.in_start, w.in_end)
    grid = run_grid(strategy, in_bars, combos, settings, signals=in_signals,
                    memory_budget_mb=memory_budget_mb, blocks=blocks)  # fmt: skip
    order = rank_values(grid.metrics, metric)
    top = [int(i) for i in order[:leaders]]
    chosen = [combos[i] for i in top]
    in_pf = simulate_params(strategy, in_bars, chosen, settings, signals=in_signals)
    bar_sharpes = grid.metrics["sharpe_ratio"].to_numpy(np.float64) / np.sqrt(settings.ann_factor)
    chosen_returns = np.asarray(in_pf.returns()).reshape(len(in_bars), -1)[:, 0]
    stats = choice_statistics(bar_sharpes, top[0], chosen_returns, grid.blocks, metric)
    out_pf = out_metrics = None
    if w.has_out:
        out_pf = simulate_params(
            strategy,
            bars.iloc[w.in_start : w.out_end],
            chosen,
            settings,
            signals=_part(signals, w.in_start, w.out_end),
            start=w.out_start - w.in_start,
        )
        out_metrics = raw_metrics(out_pf, settings.year_freq)
    return WindowResult(w, grid, order, top, in_pf, out_pf, out_metrics, stats)
