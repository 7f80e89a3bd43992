"""Backtest tasks: one library call each; a failing series never stops the others."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from vectorflow.backtest.run import (
    BacktestRequest,
    SeriesBacktest,
    SeriesPlan,
    StrategyRun,
    backtest_series,
    configured_series,
    finish_series,
    plan_series,
    run_strategy,
)
from vectorflow.settings import Settings
from vectorflow.settings.backtest import SeriesRef


@task(name="backtest-series-list", cache_policy=NO_CACHE)
def configured_series_task(settings: Settings) -> list[SeriesRef]:
    """The series the nightly backtests (configured, or every stored one at the timeframes)."""
    series = configured_series(settings)
    get_run_logger().info("%d series to backtest", len(series))
    return series


@task(
    name="backtest-series",
    cache_policy=NO_CACHE,
    task_run_name="backtest-{request.ref.exchange}-{request.ref.market}-{request.ref.symbol}"
    "-{request.ref.timeframe}",
)
def backtest_series_task(settings: Settings, request: BacktestRequest) -> dict:
    """Backtest one series (every requested strategy): runs, trades and report; its summary."""
    return _log_summary(backtest_series(settings, request))


def _log_summary(result: SeriesBacktest) -> dict:
    summary = result.summary()
    logger = get_run_logger()
    logger.info(
        "%s %s %s %s: %d runs, %d trades, %s split (%d windows), signals %s, %.1f s; report %s",
        *(summary[k] for k in ("exchange", "market", "symbol", "timeframe", "runs", "trades")),
        *(summary[k] for k in ("split", "windows", "signals", "seconds", "report")),
    )
    for name, why in summary["skipped"].items():
        logger.warning("%s not run: %s", name, why)
    return summary


# The nightly's three steps of one series: the plan (lake reads), one task per strategy (pure
# compute, spread over the flow's task runner: threads, or Dask workers), then the landing.


@task(
    name="backtest-plan",
    cache_policy=NO_CACHE,
    task_run_name="plan-{request.ref.exchange}-{request.ref.market}-{request.ref.symbol}"
    "-{request.ref.timeframe}",
)
def plan_series_task(settings: Settings, request: BacktestRequest) -> SeriesPlan:
    """Read one series' bars (and signals) from the lake and fix its windows."""
    return plan_series(settings, request)


@task(name="backtest-strategy", cache_policy=NO_CACHE)
def backtest_strategy_task(plan: SeriesPlan, strategy: str) -> StrategyRun:
    """One strategy's grid over every window of a planned series."""
    return run_strategy(plan, strategy)


@task(name="backtest-land", cache_policy=NO_CACHE)
def finish_series_task(settings: Settings, plan: SeriesPlan, results: list[StrategyRun]) -> dict:
    """Land a series' runs and trades, write its report; its summary."""
    return _log_summary(finish_series(settings, plan, results))
