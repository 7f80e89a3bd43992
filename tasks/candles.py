"""Candle ingest tasks."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tasks.retry import EXCHANGE_TASK_OPTIONS
from vectorflow.lake.catalog import refresh_catalog
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.run import load_markets
from vectorflow.settings import Settings
from vectorflow.units import Status, Unit, UnitResult


@task(
    name="load-markets",
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    task_run_name="load-markets-{exchange}",
    **EXCHANGE_TASK_OPTIONS,
)
def load_markets_task(exchange: str, settings: Settings) -> int:
    """Load (or reuse from the disk cache) the markets of `exchange` once for the run."""
    count = load_markets(exchange, settings)
    get_run_logger().info("%s: %d markets", exchange, count)
    return count


def log_result(result: UnitResult) -> UnitResult:
    """Log what a unit did in its task run (a warning when it was skipped); the result."""
    logger = get_run_logger()
    if result.status == Status.SKIPPED:
        logger.warning("%s: skipped: %s", result.unit.label, result.error)
    else:
        logger.info(
            "%s: %d rows (%s → %s), %d requests%s",
            result.unit.label, result.rows_written, result.first, result.last, result.requests,
            "".join(f", {k} {v}" for k, v in result.detail.items()),
        )  # fmt: skip
    return result


@task(
    name="ingest-series",
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    task_run_name="ingest-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.timeframe}",
    **EXCHANGE_TASK_OPTIONS,
)
def ingest_series_task(
    unit: Unit, since_ms: int | None, until_ms: int, settings: Settings
) -> UnitResult:
    """Land the missing closed candles of one series."""
    return log_result(ingest_series(unit, since_ms, until_ms, settings))


@task(name="refresh-catalog", cache_policy=NO_CACHE)
def refresh_catalog_task(settings: Settings) -> bool:
    """Rebuild the catalog's views if their definitions changed; False if the file was locked."""
    done = refresh_catalog(settings)
    if not done:
        get_run_logger().warning("catalog locked by another session; views rebuilt next run")
    return done


STEPS = {load_markets: load_markets_task, ingest_series: ingest_series_task}
