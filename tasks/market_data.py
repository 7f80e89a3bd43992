"""Order book, open interest and funding tasks."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tasks.retry import EXCHANGE_TASK_OPTIONS
from vectorflow.pipelines.market_data import MarketUnit, ingest_market_unit
from vectorflow.pipelines.orderbook_stream import capture_unit_row
from vectorflow.settings import Settings


@task(
    name="ingest-market-data",
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    task_run_name="{unit.dataset}-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.series}",
    **EXCHANGE_TASK_OPTIONS,
)
def ingest_market_unit_task(
    unit: MarketUnit, since_ms: int | None, until_ms: int, settings: Settings
) -> dict:
    """Land one order book snapshot, or the missing open interest / funding of one perpetual."""
    report = ingest_market_unit(unit, since_ms, until_ms, settings)
    logger = get_run_logger()
    if report.status == "skipped":
        logger.warning("%s: skipped: %s", unit.label, report.error)
    logger.info(
        "%s: %d rows (%s → %s), %d requests",
        unit.label,
        report.rows_written,
        report.first,
        report.last,
        report.requests,
    )
    return report.as_row()


@task(
    name="capture-orderbook",
    task_run_name="capture-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.series}",
    retries=0,  # the capture reconnects itself within its window; a rerun would be a new window
    cache_policy=NO_CACHE,
)
def capture_order_book_task(
    unit: MarketUnit, seconds: float, every: str, settings: Settings
) -> dict:
    """Keep one order book from its WebSocket stream for `seconds`; land snapshots every `every`."""
    row = capture_unit_row(unit, settings, seconds=seconds, every=every)
    get_run_logger().info(
        "%s: %s updates, %s resyncs, %s reconnects, %s snapshots (%s rows)",
        unit.label,
        row["updates"],
        row["resyncs"],
        row["reconnects"],
        row["snapshots_written"],
        row["rows_written"],
    )
    return row
