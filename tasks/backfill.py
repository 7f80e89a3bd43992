"""Backfill tasks: how much is missing, and one series' backfill."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tasks.candles import log_result
from tasks.retry import EXCHANGE_TASK_OPTIONS
from vectorflow.pipelines.backfill import Progress, backfill_series, expected_candles
from vectorflow.settings import Settings
from vectorflow.units import Unit, UnitResult


@task(name="backfill-estimate", cache_policy=NO_CACHE, task_run_name="estimate-{unit.label}")
def expected_candles_task(
    unit: Unit, since_ms: int, until_ms: int, settings: Settings
) -> int:
    """Candles the backfill of `unit` has to fetch (file names and the exchange's time)."""
    return expected_candles(unit, since_ms, until_ms, settings)


@task(
    name="backfill-series",
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    task_run_name="backfill-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.timeframe}",
    **EXCHANGE_TASK_OPTIONS,
)
def backfill_series_task(
    unit: Unit, since_ms: int, until_ms: int, settings: Settings, progress: Progress
) -> UnitResult:
    """Backfill one series, telling `progress` each page."""
    return log_result(backfill_series(unit, since_ms, until_ms, settings, progress))


STEPS = {expected_candles: expected_candles_task, backfill_series: backfill_series_task}
