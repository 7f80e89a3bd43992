"""One strategy's backtest on one series as rows and a board entry.

Per window: an `in` (or `full`) row for every parameter set, the in-sample choice (rank 1)
carrying the overfitting statistics; an `out` row for each leader (rank 1 is the choice, the
others are there for inspection) and their trades. Per strategy: one `chained` row, the honest
out-of-sample result (`chain`), which is the strategy's board entry, with the latest window's
choice (its params and in-sample run) beside it. Nothing here picks among out-of-sample results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vectorflow.backtest.chain import Chain
from vectorflow.backtest.store import (
    RunContext,
    Sample,
    chained_run_id,
    params_json,
    run_id,
    run_row,
    trade_rows,
)
from vectorflow.backtest.walk_forward import WindowResult
from vectorflow.timeframes import timeframe_ms

BOARD_METRICS = (  # every rankable metric, and what a reader wants beside it
    "total_return", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown", "win_rate",
    "profit_factor", "trades", "exposure", "benchmark_return",
)  # fmt: skip


@dataclass
class InSampleGrid:
    """The latest window's in-sample metric of every set (the report's heatmap)."""

    metric: str
    combos: list[dict]
    values: list[float | None]  # None where vectorbt gives inf or NaN
    chosen: int  # position of the choice
    window_index: int


@dataclass
class StrategyOutcome:
    """One strategy's results on the series (or why it was skipped, or failed)."""

    strategy: str
    combos: int = 0
    skipped: str | None = None
    failed: str | None = None  # the strategy raised or could not load: where and why
    board: dict | None = None  # the chained out-of-sample result, the latest choice beside it
    equity: pd.Series | None = None  # chained out-of-sample equity (in-sample without out)
    trades: pd.DataFrame | None = None  # the choices' out-of-sample trades (chain.TRADE_COLUMNS)
    choices: list[str] = field(default_factory=list)  # each window's chosen params (JSON)
    grid: InSampleGrid | None = None


@dataclass
class WindowRows:
    """The rows of one window, and which of them belong to the choice."""

    runs: list[dict]
    trades: list[dict]
    chosen_in: dict  # the in-sample choice's row
    chosen_out: dict | None  # its out-of-sample row (None for a full-sample run)


def _sample(name: str, res: WindowResult, start: int, end: int, bars: pd.DataFrame, ctx):
    return Sample(name, res.window.index, bars.index[start:end], timeframe_ms(ctx.ref.timeframe))


def window_rows(ctx: RunContext, res: WindowResult, bars: pd.DataFrame, stamp: int) -> WindowRows:
    """The runs and trades of one window of one strategy."""
    w, grid = res.window, res.grid
    ins = _sample("in" if w.has_out else "full", res, w.in_start, w.in_end, bars, ctx)
    rank = np.empty(len(res.order), dtype=np.int64)
    rank[res.order] = np.arange(1, len(res.order) + 1)
    in_ids = [run_id(ctx, combo, ins) for combo in grid.combos]
    leaders = set(res.leaders)
    runs = [
        run_row(ctx, combo, ins, grid.metrics.iloc[i].to_dict(), run=in_ids[i],
                is_rank=int(rank[i]), is_run_id=None, leader=i in leaders, ingested_at_ms=stamp,
                stats=res.stats if i == res.chosen else None)
        for i, combo in enumerate(grid.combos)
    ]  # fmt: skip
    trades = trade_rows(ctx, res.in_portfolio, [in_ids[i] for i in res.leaders], ins.name, stamp)
    chosen_in, chosen_out = runs[res.chosen], None
    if w.has_out:
        out = _sample("out", res, w.out_start, w.out_end, bars, ctx)
        out_ids = [run_id(ctx, grid.combos[i], out) for i in res.leaders]
        for j, i in enumerate(res.leaders):
            runs.append(run_row(ctx, grid.combos[i], out, res.out_metrics.iloc[j].to_dict(),
                                run=out_ids[j], is_rank=j + 1, is_run_id=in_ids[i], leader=True,
                                ingested_at_ms=stamp))  # fmt: skip
        chosen_out = runs[len(grid.combos)]
        trades += trade_rows(ctx, res.out_portfolio, out_ids, "out", stamp)
    return WindowRows(runs, trades, chosen_in, chosen_out)


def chained_row(ctx: RunContext, chain: Chain, windows: list[WindowRows], latest: WindowResult,
                stamp: int) -> dict:  # fmt: skip
    """The `chained` row: the chain's metrics, the latest choice's params and statistics."""
    parts = [w.chosen_out for w in windows if w.chosen_out is not None]
    step = timeframe_ms(ctx.ref.timeframe)
    sample = Sample("chained", latest.window.index, chain.equity.index, step)
    row = run_row(ctx, latest.grid.combos[latest.chosen], sample, chain.raw,
                  run=chained_run_id(ctx, [p["run_id"] for p in parts]), is_rank=1,
                  is_run_id=windows[-1].chosen_in["run_id"], leader=False, ingested_at_ms=stamp,
                  stats=latest.stats, windows=chain.windows)  # fmt: skip
    return row


def board_row(chained: dict, chosen_in: dict) -> dict:
    """The strategy's board entry: the chained out-of-sample run, the latest choice beside it."""
    keys = ("strategy", "params", "selection_metric", "oos_windows", "trials", "dsr", "pbo",
            "window_start", "window_end")  # fmt: skip
    row = {k: chained[k] for k in keys}
    row |= {f"oos_{m}": chained[m] for m in BOARD_METRICS}
    row |= {f"is_{m}": chosen_in[m] for m in BOARD_METRICS}
    row["oos_null_reasons"], row["is_null_reasons"] = (
        chained["null_reasons"], chosen_in["null_reasons"]
    )
    row["run_id"], row["is_run_id"] = chained["run_id"], chained["is_run_id"]
    return row


def in_sample_grid(res: WindowResult, metric: str) -> InSampleGrid:
    """The in-sample metric of every set of one window."""
    values = res.grid.metrics[metric].to_numpy(np.float64)
    return InSampleGrid(
        metric,
        list(res.grid.combos),
        [float(v) if np.isfinite(v) else None for v in values],
        res.chosen,
        res.window.index,
    )


def choices(results: list[WindowResult]) -> list[str]:
    """Each window's chosen params, as stored."""
    return [params_json(r.grid.combos[r.chosen]) for r in results]
