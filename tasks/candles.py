"""Candle ingest tasks."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tasks.retry import EXCHANGE_TASK_OPTIONS
from vectorflow.exchanges.client import connect
from vectorflow.pipelines.candles import SeriesUnit, ingest_series
from vectorflow.lake.catalog import refresh_catalog
from vectorflow.settings import Settings


@task(
    name="load-markets",
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    task_run_name="load-markets-{exchange}",
    **EXCHANGE_TASK_OPTIONS,
)
def load_markets_task(exchange: str, settings: Settings) -> int:
    """Load (or reuse from the disk cache) the markets of `exchange` once for the run."""
    client = connect(exchange, settings)
    get_run_logger().info("%s: %d markets", exchange, len(client.markets))
    return len(client.markets)


@task(
    name="ingest-series",
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    task_run_name="ingest-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.timeframe}",
    **EXCHANGE_TASK_OPTIONS,
)
def ingest_series_task(
    unit: SeriesUnit, since_ms: int | None, until_ms: int, settings: Settings
) -> dict:
    """Land the missing closed candles of one series; its report as a dict."""
    report = ingest_series(unit, since_ms, until_ms, settings)
    if report.status == "skipped":
        get_run_logger().warning("%s: skipped: %s", unit.label, report.error)
    get_run_logger().info(
        "%s: %d rows (%s → %s), %d gaps, %d requests",
        unit.label,
        report.rows_written,
        report.first_candle,
        report.last_candle,
        report.gaps,
        report.requests,
    )
    return report.as_row()


@task(name="refresh-catalog", cache_policy=NO_CACHE)
def refresh_catalog_task(settings: Settings) -> bool:
    """Rebuild the catalog's views if their definitions changed; False if the file was locked."""
    done = refresh_catalog(settings.data_dir)
    if not done:
        get_run_logger().warning("catalog locked by another session; views rebuilt next run")
    return done
