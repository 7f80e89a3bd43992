"""One series' backtest: read the lake, run every strategy's grid per window, store, report.

For each strategy and window the whole grid runs in sample (one `backtest_runs` row per
parameter set), the best `leaders` by the chosen metric keep their trades and run out of sample
(rows and trades too). The leaderboard ranks the out-of-sample runs and shows the in-sample run
that chose them beside each.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from vectorflow.backtest.data import load_bars, load_signals, stored_series
from vectorflow.backtest.grid import param_grid
from vectorflow.backtest.metrics import METRICS, rank_values
from vectorflow.backtest.portfolio import portfolio_settings
from vectorflow.backtest.store import (
    RunContext,
    Sample,
    code_version,
    run_id,
    run_row,
    trade_rows,
    write_results,
)
from vectorflow.backtest.strategies import Strategy, all_strategies, get_strategy
from vectorflow.backtest.walk_forward import (
    Window,
    WindowResult,
    days_to_bars,
    evaluate_window,
    holdout_window,
    rolling_windows,
)
from vectorflow.errors import InvalidInput
from vectorflow.numba_cache import use_numba_cache
from vectorflow.settings import Settings
from vectorflow.settings.backtest import RANKABLE_METRICS, BacktestConfig, SeriesRef
from vectorflow.timeframes import now_ms, parse_time, timeframe_ms

log = logging.getLogger(__name__)

BOARD_METRICS = (  # every rankable metric, and what a reader wants beside it
    "total_return", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown", "win_rate",
    "profit_factor", "trades", "exposure", "benchmark_return",
)  # fmt: skip


@dataclass(frozen=True)
class BacktestRequest:
    """What to backtest on one series; None takes the `[backtest]` settings."""

    ref: SeriesRef
    strategies: tuple[str, ...] = ()  # () = `[backtest] strategies`, or every strategy
    grid: str | None = None
    walk_forward: bool | None = None
    metric: str | None = None
    since: str | None = None
    until: str | None = None
    sl_stop: tuple[float, ...] | None = None
    tp_stop: tuple[float, ...] | None = None


@dataclass
class StrategyOutcome:
    """One strategy's results on the series (or why it was skipped)."""

    strategy: str
    combos: int = 0
    skipped: str | None = None
    board: list[dict] = field(default_factory=list)  # out-of-sample runs, best first
    equity: pd.Series | None = None  # the in-sample best's out-of-sample value, chained / cash


@dataclass
class SeriesBacktest:
    """Everything one series' backtest produced."""

    ref: SeriesRef
    batch_id: str
    run_at_ms: int
    bars: int
    split: str
    windows: int
    signals_source: str
    outcomes: list[StrategyOutcome]
    benchmark: pd.Series | None = None  # buy and hold over the out-of-sample span, / first close
    runs: int = 0
    trades: int = 0
    files: list[str] = field(default_factory=list)
    report: str | None = None
    seconds: float = 0.0

    def leaderboard(self) -> list[dict]:
        """The best out-of-sample run per strategy (in-sample beside it), best first."""
        rows = [o.board[0] for o in self.outcomes if o.board]
        return sorted(rows, key=_board_key)

    def skipped(self) -> dict[str, str]:
        """Strategies that did not run, with the reason."""
        return {o.strategy: o.skipped for o in self.outcomes if o.skipped}

    def summary(self) -> dict:
        """Plain, JSON-ready facts of the backtest (the leaderboard holds None, never inf)."""
        return {
            **self.ref.model_dump(),
            "batch_id": self.batch_id,
            "split": self.split,
            "windows": self.windows,
            "bars": self.bars,
            "signals": self.signals_source,
            "runs": self.runs,
            "trades": self.trades,
            "report": self.report,
            "seconds": self.seconds,
            "leaderboard": self.leaderboard(),
            "skipped": self.skipped(),
        }


def _board_key(row: dict) -> tuple:
    value = row.get(f"oos_{row['selection_metric']}")
    return (value is None, -(value or 0.0), row["strategy"])


def _windows(n_bars: int, timeframe: str, walk_forward: bool, cfg) -> list[Window]:
    if not walk_forward:
        return [holdout_window(n_bars, cfg.in_sample_fraction)]
    w = cfg.windows
    return rolling_windows(
        n_bars,
        days_to_bars(w.in_sample_days, timeframe),
        days_to_bars(w.out_of_sample_days, timeframe),
        w.max_windows,
    )


def _missing_signals(strategy: Strategy, signals: pd.DataFrame | None, source: str) -> str | None:
    if not strategy.signal_columns:
        return None
    if signals is None:
        return f"no signals for this series: {source}"
    absent = [c for c in strategy.signal_columns if c not in signals or signals[c].isna().all()]
    if absent:
        return f"the signals have no {', '.join(absent)} for these bars"
    return None


def _window_rows(ctx: RunContext, res: WindowResult, bars: pd.DataFrame, stamp: int):
    """(runs, trades, board rows) of one window of one strategy."""
    w, grid, step = res.window, res.grid, timeframe_ms(ctx.ref.timeframe)
    ins = Sample("in" if w.has_out else "full", w.index, bars.index[w.in_start : w.in_end], step)
    rank = np.empty(len(res.order), dtype=np.int64)
    rank[res.order] = np.arange(1, len(res.order) + 1)
    in_ids = [run_id(ctx, combo, ins) for combo in grid.combos]
    leaders = set(res.leaders)
    runs = [
        run_row(ctx, combo, ins, grid.metrics.iloc[i].to_dict(), run=in_ids[i],
                is_rank=int(rank[i]), is_run_id=None, leader=i in leaders, ingested_at_ms=stamp)
        for i, combo in enumerate(grid.combos)
    ]  # fmt: skip
    trades = trade_rows(ctx, res.in_portfolio, [in_ids[i] for i in res.leaders], ins.name, stamp)
    board = []
    if w.has_out:
        out = Sample("out", w.index, bars.index[w.out_start : w.out_end], step)
        out_ids = [run_id(ctx, grid.combos[i], out) for i in res.leaders]
        for j, i in enumerate(res.leaders):
            row = run_row(ctx, grid.combos[i], out, res.out_metrics.iloc[j].to_dict(),
                          run=out_ids[j], is_rank=j + 1, is_run_id=in_ids[i], leader=True,
                          ingested_at_ms=stamp)  # fmt: skip
            runs.append(row)
            board.append(_board_row(row, runs[i]))
        trades += trade_rows(ctx, res.out_portfolio, out_ids, "out", stamp)
    return runs, trades, board


def _board_row(out: dict, ins: dict) -> dict:
    row = {k: out[k] for k in ("strategy", "params", "window_index", "selection_metric")}
    row["is_rank"] = out["is_rank"]
    row |= {f"oos_{m}": out[m] for m in BOARD_METRICS}
    row |= {f"is_{m}": ins[m] for m in BOARD_METRICS}
    row["oos_null_reasons"], row["is_null_reasons"] = out["null_reasons"], ins["null_reasons"]
    row["run_id"] = out["run_id"]
    return row


def _chained_equity(results: list[WindowResult], init_cash: float) -> pd.Series:
    """The in-sample best's value in each out-of-sample part (or the full run), chained."""
    parts, level = [], 1.0
    for res in results:
        pf = res.out_portfolio if res.out_portfolio is not None else res.in_portfolio
        value = np.asarray(pf.value()).reshape(len(pf.wrapper.index), -1)[:, 0] / init_cash
        parts.append(pd.Series(value * level, index=pf.wrapper.index))
        level *= value[-1]
    return pd.concat(parts)


def _rank_board(board: list[dict], metric: str) -> list[dict]:
    if not board:
        return board
    frame = pd.DataFrame(
        {
            m: [np.nan if r[f"oos_{m}"] is None else r[f"oos_{m}"] for r in board]
            for m in METRICS
            if f"oos_{m}" in board[0]
        }  # fmt: skip
    )
    return [board[i] for i in rank_values(frame, metric)]


def _run_strategy(strategy, bars, signals, source, windows, ctx, request, cfg, stamp):
    """(outcome, runs, trades) of one strategy over every window."""
    outcome = StrategyOutcome(strategy.name)
    outcome.skipped = _missing_signals(strategy, signals, source)
    if outcome.skipped:
        return outcome, [], []
    stops = {
        "sl_stop": cfg.sl_stop if request.sl_stop is None else request.sl_stop,
        "tp_stop": cfg.tp_stop if request.tp_stop is None else request.tp_stop,
    }
    combos = param_grid(strategy, request.grid or cfg.grid, **stops)
    outcome.combos = len(combos)
    runs, trades, board, results = [], [], [], []
    for window in windows:
        res = evaluate_window(
            strategy, bars, combos, window, ctx.portfolio, signals=signals, metric=ctx.metric,
            leaders=cfg.leaders, memory_budget_mb=cfg.memory_budget_mb,
        )  # fmt: skip
        w_runs, w_trades, w_board = _window_rows(ctx, res, bars, stamp)
        runs += w_runs
        trades += w_trades
        board += w_board
        results.append(res)
    outcome.board = _rank_board(board, ctx.metric)
    outcome.equity = _chained_equity(results, ctx.portfolio.init_cash)
    return outcome, runs, trades


def _context(request: BacktestRequest, cfg, walk_forward: bool, stamp: int) -> RunContext:
    ref = request.ref
    return RunContext(
        batch_id=uuid.uuid4().hex[:16],
        run_at_ms=stamp,
        ref=ref,
        strategy="",
        split="walk_forward" if walk_forward else "holdout",
        metric=request.metric or cfg.metric,
        portfolio=portfolio_settings(cfg, ref.exchange, ref.market, ref.timeframe),
        version=code_version(),
    )


def strategy_names(cfg, request: BacktestRequest) -> tuple[str, ...]:
    """The strategies a request runs: its own, else `[backtest] strategies`, else every one."""
    names = request.strategies or tuple(cfg.strategies)
    return tuple(get_strategy(n).name for n in names) or tuple(s.name for s in all_strategies())


@dataclass
class SeriesPlan:
    """What every strategy of one series' backtest shares: the bars and signals read once from
    the lake, the windows, the run context. Plain data (picklable): a plan made in one process
    can run its strategies in others (the nightly flow's Dask workers)."""

    request: BacktestRequest
    cfg: BacktestConfig
    ctx: RunContext
    symbol_id: str
    bars: pd.DataFrame
    signals: pd.DataFrame | None
    signals_source: str
    windows: list[Window]
    strategies: tuple[str, ...]
    started_at: float  # time.time() when the plan was made


@dataclass
class StrategyRun:
    """One strategy's results on a planned series: its outcome and its lake rows."""

    outcome: StrategyOutcome
    runs: list[dict]
    trades: list[dict]


def plan_series(settings: Settings, request: BacktestRequest) -> SeriesPlan:
    """Read one stored series (and its signals when a strategy needs them); fix the windows."""
    started = time.time()
    cfg, ref = settings.backtest, request.ref
    names = strategy_names(cfg, request)
    walk_forward = cfg.walk_forward if request.walk_forward is None else request.walk_forward
    since = None if request.since is None else parse_time(request.since, name="since")
    until = None if request.until is None else parse_time(request.until, name="until")
    series, candles, bars = load_bars(settings.storage, ref, since, until)
    windows = _windows(len(bars), ref.timeframe, walk_forward, cfg)
    signals, source = None, "not needed"
    if any(get_strategy(n).signal_columns for n in names):
        signals, source = load_signals(settings.storage, ref, candles, bars)
    ctx = _context(request, cfg, walk_forward, now_ms())
    return SeriesPlan(
        request, cfg, ctx, series.symbol_id, bars, signals, source, windows, names, started
    )


def run_strategy(plan: SeriesPlan, name: str) -> StrategyRun:
    """One strategy's grid over every window of a planned series (no I/O)."""
    use_numba_cache()  # before vectorbt loads numba, in whichever process runs the grid
    strategy = get_strategy(name)
    outcome, runs, trades = _run_strategy(
        strategy, plan.bars, plan.signals, plan.signals_source, plan.windows,
        replace(plan.ctx, strategy=strategy.name), plan.request, plan.cfg, plan.ctx.run_at_ms,
    )  # fmt: skip
    return StrategyRun(outcome, runs, trades)


def finish_series(
    settings: Settings, plan: SeriesPlan, results: list[StrategyRun], *, report: bool = True
) -> SeriesBacktest:
    """Land the runs and trades of every strategy (in the plan's order) and write the report."""
    ctx, bars, windows = plan.ctx, plan.bars, plan.windows
    result = SeriesBacktest(
        ctx.ref, ctx.batch_id, ctx.run_at_ms, len(bars), ctx.split, len(windows),
        plan.signals_source, [r.outcome for r in results],
    )  # fmt: skip
    all_runs = [row for r in results for row in r.runs]
    all_trades = [row for r in results for row in r.trades]
    first_out = windows[0].out_start if windows[0].has_out else windows[0].in_start
    result.benchmark = bars["close"].iloc[first_out:] / bars["close"].iloc[first_out]
    files = write_results(settings.storage, ctx.ref, plan.symbol_id, all_runs, all_trades)
    result.runs, result.trades = len(all_runs), len(all_trades)
    result.files = [str(f) for f in files]
    if report:
        from vectorflow.backtest.report import write_report

        result.report = str(write_report(settings.data_dir / "reports", result))
    result.seconds = round(time.time() - plan.started_at, 2)
    return result


def backtest_series(
    settings: Settings, request: BacktestRequest, *, report: bool = True
) -> SeriesBacktest:
    """Backtest one stored series with every requested strategy; land runs, trades, a report.

    In one process: the plan, each strategy in turn, then the rows and the report. The nightly
    flow runs the same three steps as tasks, the strategies spread over its task runner.
    """
    plan = plan_series(settings, request)
    results = [run_strategy(plan, name) for name in plan.strategies]
    return finish_series(settings, plan, results, report=report)


def configured_series(settings: Settings) -> list[SeriesRef]:
    """The series the nightly backtests: `[backtest] series`, else every stored one at
    `[backtest] timeframes`."""
    cfg = settings.backtest
    if cfg.series:
        return list(cfg.series)
    return [s.ref for s in stored_series(settings.storage, list(cfg.timeframes))]


def check_options(strategies=(), grid: str | None = None, metric: str | None = None) -> None:
    """Validate names before any work (InvalidInput names the bad value)."""
    for name in strategies:
        get_strategy(name)
    if grid is not None and grid not in ("default", "small"):
        raise InvalidInput(f"unknown grid {grid!r}; expected default or small")
    if metric is not None and metric not in RANKABLE_METRICS:
        raise InvalidInput(
            f"unknown metric {metric!r}; expected one of {', '.join(RANKABLE_METRICS)}"
        )


def check_request(request: BacktestRequest) -> None:
    """Validate a request's names before any work."""
    check_options(request.strategies, request.grid, request.metric)
