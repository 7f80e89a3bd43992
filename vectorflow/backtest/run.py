"""One series' backtest: read the lake, run every strategy's grid per window, store, report.

For each strategy and window the whole grid runs in sample (one `backtest_runs` row per
parameter set) and is ranked by the chosen metric; rank 1 is the choice. The choice runs out of
sample, and the choices' out-of-sample parts are chained into the strategy's result (the board
entry), beside its overfitting statistics (DSR, PBO). The next leaders by in-sample rank run
out of sample too, for inspection only. A strategy that fails (a broken user strategy) fails
alone: the others still run and land.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from vectorflow.backtest.chain import chain_choices
from vectorflow.backtest.data import load_bars, load_signals, stored_series
from vectorflow.backtest.grid import GRIDS, param_grid
from vectorflow.backtest.library import StrategyError, strategy_library
from vectorflow.backtest.outcome import (
    StrategyOutcome,
    board_row,
    chained_row,
    choices,
    in_sample_grid,
    window_rows,
)
from vectorflow.backtest.portfolio import portfolio_settings
from vectorflow.backtest.store import RunContext, code_version, write_results
from vectorflow.backtest.strategies import Strategy
from vectorflow.backtest.walk_forward import (
    Window,
    days_to_bars,
    evaluate_window,
    holdout_window,
    rolling_windows,
)
from vectorflow.errors import InvalidInput
from vectorflow.numba_cache import use_numba_cache
from vectorflow.settings import Settings
from vectorflow.settings.backtest import RANKABLE_METRICS, BacktestConfig, SeriesRef
from vectorflow.timeframes import now_ms, parse_time


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
    candles: pd.DataFrame | None = None  # the bars (open, high, low, close), for the report
    benchmark: pd.Series | None = None  # buy and hold over the out-of-sample span, / first close
    runs: int = 0
    trades: int = 0
    files: list[str] = field(default_factory=list)
    report: str | None = None
    seconds: float = 0.0

    def leaderboard(self) -> list[dict]:
        """Per strategy its chained out-of-sample result (the latest choice beside it), best
        first by the selection metric."""
        return sorted((o.board for o in self.outcomes if o.board), key=_board_key)

    def skipped(self) -> dict[str, str]:
        """Strategies that did not run, with the reason."""
        return {o.strategy: o.skipped for o in self.outcomes if o.skipped}

    def failed(self) -> dict[str, str]:
        """Strategies that failed (raised, or could not load), with where and why."""
        return {o.strategy: o.failed for o in self.outcomes if o.failed}

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
            "failed": self.failed(),
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
    if not strategy.needs_signals:
        return None
    if signals is None:
        return f"no signals for this series: {source}"
    absent = [c for c in strategy.signal_columns if c not in signals or signals[c].isna().all()]
    if absent:
        return f"the signals have no {', '.join(absent)} for these bars"
    return None


def backtest_config(settings: Settings) -> BacktestConfig:
    """`[backtest]` with the strategy folders made absolute (relative to the settings file)."""
    cfg = settings.backtest
    base = Path(settings.config_path).parent
    paths = [str((base / Path(p).expanduser()).resolve()) for p in cfg.strategy_paths]
    return cfg.model_copy(update={"strategy_paths": paths})


@dataclass
class SeriesPlan:
    """What every strategy of one series' backtest shares: the bars and signals read once from
    the lake, the windows, the run context. Plain data (picklable): a plan made in one process
    can run its strategies in others (the nightly flow's Dask workers)."""

    request: BacktestRequest
    cfg: BacktestConfig  # strategy folders absolute
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


def failed_run(name: str, error: str) -> StrategyRun:
    """The result of a strategy that failed: no rows, the error in its outcome."""
    return StrategyRun(StrategyOutcome(name, failed=error), [], [])


def _evaluate(strategy: Strategy, plan: SeriesPlan, ctx: RunContext) -> StrategyRun:
    """Every window of one strategy: rows, the chain, the board entry."""
    cfg, request, stamp = plan.cfg, plan.request, plan.ctx.run_at_ms
    stops = {
        "sl_stop": cfg.sl_stop if request.sl_stop is None else request.sl_stop,
        "tp_stop": cfg.tp_stop if request.tp_stop is None else request.tp_stop,
    }
    combos = param_grid(strategy, request.grid or cfg.grid, **stops)
    outcome = StrategyOutcome(strategy.name, combos=len(combos))
    results, rows = [], []
    for window in plan.windows:
        res = evaluate_window(
            strategy, plan.bars, combos, window, ctx.portfolio, signals=plan.signals,
            metric=ctx.metric, leaders=cfg.leaders, memory_budget_mb=cfg.memory_budget_mb,
            blocks=cfg.pbo_blocks,
        )  # fmt: skip
        results.append(res)
        rows.append(window_rows(ctx, res, plan.bars, stamp))
    runs = [r for w in rows for r in w.runs]
    trades = [t for w in rows for t in w.trades]
    outcome.choices, outcome.grid = choices(results), in_sample_grid(results[-1], ctx.metric)
    chain = chain_choices([r.out_portfolio for r in results if r.out_portfolio is not None],
                          ctx.portfolio)  # fmt: skip
    if chain is None:  # no out-of-sample bars: the report shows the in-sample choice
        pf = results[-1].in_portfolio
        value = np.asarray(pf.value()).reshape(len(pf.wrapper.index), -1)[:, 0]
        outcome.equity = pd.Series(value / ctx.portfolio.init_cash, index=pf.wrapper.index)
        return StrategyRun(outcome, runs, trades)
    chained = chained_row(ctx, chain, rows, results[-1], stamp)
    runs.append(chained)
    outcome.board = board_row(chained, rows[-1].chosen_in)
    outcome.equity, outcome.trades = chain.equity, chain.trades
    return StrategyRun(outcome, runs, trades)


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


def strategy_names(settings: Settings, request: BacktestRequest) -> tuple[str, ...]:
    """The strategies a request runs: its own, else `[backtest] strategies`, else every one."""
    library = strategy_library(backtest_config(settings))
    names = request.strategies or tuple(settings.backtest.strategies)
    return tuple(library.get(n).name for n in names) or library.names()


def plan_series(settings: Settings, request: BacktestRequest) -> SeriesPlan:
    """Read one stored series (and its signals when a strategy needs them); fix the windows."""
    started = time.time()
    cfg, ref = backtest_config(settings), request.ref
    library = strategy_library(cfg)
    names = strategy_names(settings, request)
    walk_forward = cfg.walk_forward if request.walk_forward is None else request.walk_forward
    since = None if request.since is None else parse_time(request.since, name="since")
    until = None if request.until is None else parse_time(request.until, name="until")
    series, candles, bars = load_bars(settings.storage, ref, since, until)
    windows = _windows(len(bars), ref.timeframe, walk_forward, cfg)
    signals, source = None, "not needed"
    if any(library.get(n).needs_signals and not library.get(n).error for n in names):
        signals, source = load_signals(settings.storage, ref, candles, bars)
    ctx = _context(request, cfg, walk_forward, now_ms())
    return SeriesPlan(
        request, cfg, ctx, series.symbol_id, bars, signals, source, windows, names, started
    )


def run_strategy(plan: SeriesPlan, name: str) -> StrategyRun:
    """One strategy's grid over every window of a planned series (no I/O); StrategyError when
    the strategy cannot load or raises (its file and line in the message)."""
    use_numba_cache()  # before vectorbt loads numba, in whichever process runs the grid
    strategy = strategy_library(plan.cfg).get(name)
    if strategy.error:
        raise StrategyError(strategy.error)
    skipped = _missing_signals(strategy, plan.signals, plan.signals_source)
    if skipped:
        return StrategyRun(StrategyOutcome(strategy.name, skipped=skipped), [], [])
    return _evaluate(strategy, plan, replace(plan.ctx, strategy=strategy.name))


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
    result.candles = bars.iloc[first_out:][["open", "high", "low", "close"]]
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

    In one process: the plan, each strategy in turn (one that fails is reported, the others
    run), then the rows and the report. The nightly flow runs the same steps as tasks, the
    strategies spread over its task runner.
    """
    plan = plan_series(settings, request)
    results = []
    for name in plan.strategies:
        try:
            results.append(run_strategy(plan, name))
        except StrategyError as exc:
            results.append(failed_run(name, str(exc)))
    return finish_series(settings, plan, results, report=report)


def configured_series(settings: Settings) -> list[SeriesRef]:
    """The series the nightly backtests: `[backtest] series`, else every stored one at
    `[backtest] timeframes`."""
    cfg = settings.backtest
    if cfg.series:
        return list(cfg.series)
    return [s.ref for s in stored_series(settings.storage, list(cfg.timeframes))]


def check_options(
    strategies=(), grid: str | None = None, metric: str | None = None, settings=None
) -> None:
    """Validate names before any work (InvalidInput names the bad value); user strategies are
    known when `settings` is given."""
    library = strategy_library(backtest_config(settings) if settings else BacktestConfig())
    for name in strategies:
        library.get(name)
    if grid is not None and grid not in GRIDS:
        raise InvalidInput(f"unknown grid {grid!r}; expected default or small")
    if metric is not None and metric not in RANKABLE_METRICS:
        raise InvalidInput(
            f"unknown metric {metric!r}; expected one of {', '.join(RANKABLE_METRICS)}"
        )


def check_request(request: BacktestRequest, settings=None) -> None:
    """Validate a request's names before any work."""
    check_options(request.strategies, request.grid, request.metric, settings)
