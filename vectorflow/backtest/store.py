"""Backtest results as lake rows: `backtest_runs` (one per strategy x params x window x sample)
and `backtest_trades`, written with the lake's atomic writer.

A run id is a hash of everything that determines the run's numbers (series, strategy, params,
sample and its bars, costs, code version), so re-running the same night on the same data writes
the same ids and the views keep one row per run (the newest wins).
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
import pyarrow as pa

from vectorflow import __version__
from vectorflow.backtest.metrics import clean_metrics
from vectorflow.backtest.portfolio import PortfolioSettings
from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import BACKTEST_RUNS, BACKTEST_TRADES, Dataset
from vectorflow.lake.storage import Storage
from vectorflow.settings.backtest import SeriesRef


@functools.cache
def code_version() -> str:
    """`vectorflow <version>+g<commit>` (commit when run from a git checkout) and vectorbt's."""
    import vectorbt

    version = f"vectorflow {__version__}"
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if done.returncode == 0 and done.stdout.strip():
            version += f"+g{done.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{version} vectorbt {vectorbt.__version__}"


def params_json(combo: dict) -> str:
    """Parameters as canonical JSON keyed by parameter name."""
    return json.dumps({k: _plain(v) for k, v in combo.items()}, sort_keys=True)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _ms(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)


@dataclass(frozen=True)
class RunContext:
    """What every run of one strategy in one backtest shares."""

    batch_id: str
    run_at_ms: int
    ref: SeriesRef
    strategy: str
    split: str  # holdout | walk_forward
    metric: str
    portfolio: PortfolioSettings
    version: str


@dataclass(frozen=True)
class Sample:
    """The bars one run covered: `in`, `out` or `full`, their window and its close times."""

    name: str
    window_index: int
    index: pd.DatetimeIndex  # close times of the bars
    step_ms: int

    @property
    def start_ms(self) -> int:
        """Open time of the first bar."""
        return _ms(self.index[0]) - self.step_ms

    @property
    def end_ms(self) -> int:
        """Close time of the last bar."""
        return _ms(self.index[-1])


def run_id(ctx: RunContext, combo: dict, sample: Sample) -> str:
    """The id of one run: a hash of what determines its numbers."""
    p = ctx.portfolio
    identity = [
        ctx.ref.exchange, ctx.ref.market, ctx.ref.symbol, ctx.ref.timeframe, ctx.strategy,
        params_json(combo), ctx.split, sample.name, sample.start_ms, sample.end_ms,
        len(sample.index), p.fees, p.slippage, p.init_cash, p.both_sides,
        ctx.version,
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]


def run_row(
    ctx: RunContext,
    combo: dict,
    sample: Sample,
    raw: dict,
    *,
    run: str,
    is_rank: int | None,
    is_run_id: str | None,
    leader: bool,
    ingested_at_ms: int,
) -> dict:
    """One `backtest_runs` row from vectorbt's raw metrics of one column."""
    metrics, reasons = clean_metrics(raw)
    p = ctx.portfolio
    return {
        "run_id": run,
        "batch_id": ctx.batch_id,
        "run_at": ctx.run_at_ms,
        "exchange": ctx.ref.exchange,
        "market": ctx.ref.market,
        "symbol": ctx.ref.symbol,
        "timeframe": ctx.ref.timeframe,
        "strategy": ctx.strategy,
        "params": params_json(combo),
        "split": ctx.split,
        "sample": sample.name,
        "window_index": sample.window_index,
        "window_start": sample.start_ms,
        "window_end": sample.end_ms,
        "bars": len(sample.index),
        "selection_metric": ctx.metric,
        "is_rank": is_rank,
        "is_run_id": is_run_id,
        "leader": leader,
        **metrics,
        "null_reasons": reasons,
        "fees": p.fees,
        "slippage": p.slippage,
        "init_cash": p.init_cash,
        "direction": "long_short" if p.both_sides else "long_only",
        "code_version": ctx.version,
        "ingested_at": ingested_at_ms,
    }


def trade_rows(ctx: RunContext, pf, runs: list[str], sample: str, ingested_at_ms: int) -> list:
    """`backtest_trades` rows of every column of `pf` (column i belongs to run runs[i])."""
    records = pf.trades.values  # structured array of vectorbt trade records
    times = np.asarray(pf.wrapper.index.as_unit("ms").asi8)
    series = {
        "exchange": ctx.ref.exchange,
        "market": ctx.ref.market,
        "symbol": ctx.ref.symbol,
        "timeframe": ctx.ref.timeframe,
        "strategy": ctx.strategy,
        "sample": sample,
    }
    rows = []
    for r in records:
        rows.append(
            {
                "run_id": runs[int(r["col"])],
                "entry_time": int(times[r["entry_idx"]]),
                **series,
                "side": "long" if r["direction"] == 0 else "short",
                "status": "open" if r["status"] == 0 else "closed",
                "size": float(r["size"]),
                "entry_price": float(r["entry_price"]),
                "exit_time": int(times[r["exit_idx"]]),
                "exit_price": float(r["exit_price"]),
                "fees": float(r["entry_fees"] + r["exit_fees"]),
                "pnl": float(r["pnl"]),
                "return": float(r["return"]),
                "ingested_at": ingested_at_ms,
            }
        )
    return rows


def _write(lake: Storage, dataset: Dataset, rows: list[dict], symbol_id: str, ref: SeriesRef):
    if not rows:
        return None
    table = pa.Table.from_pylist(rows, schema=dataset.schema)
    times = table.column(dataset.order_by).cast(pa.int64()).to_numpy()
    folder = partition_dir(
        lake.root,
        dataset,
        {
            "exchange": ref.exchange,
            "market": ref.market,
            "symbol_id": symbol_id,
            "timeframe": ref.timeframe,
        },
    )
    return lake.write(table, folder, int(times.min()), int(times.max()))


def write_results(
    lake: Storage, ref: SeriesRef, symbol_id: str, runs: list[dict], trades: list[dict]
) -> list[PurePath]:
    """Land the runs and trades of one backtest as one file each (temp file, then rename)."""
    written = [
        _write(lake, BACKTEST_RUNS, runs, symbol_id, ref),
        _write(lake, BACKTEST_TRADES, trades, symbol_id, ref),
    ]
    return [p for p in written if p is not None]
