"""Order book, open interest and funding tasks."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tasks.candles import log_result
from tasks.retry import EXCHANGE_TASK_OPTIONS
from vectorflow.pipelines.market_data import ingest_market_unit
from vectorflow.pipelines.orderbook_stream import capture_unit
from vectorflow.settings import Settings
from vectorflow.units import Unit, UnitResult


@task(
    name="ingest-market-data",
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    task_run_name="{unit.dataset}-{unit.exchange}-{unit.market}-{unit.symbol}",
    **EXCHANGE_TASK_OPTIONS,
)
def ingest_market_unit_task(
    unit: Unit, since_ms: int | None, until_ms: int, settings: Settings, levels: int
) -> UnitResult:
    """Land one order book snapshot, or the missing open interest / funding of one perpetual."""
    return log_result(ingest_market_unit(unit, since_ms, until_ms, settings, levels))


@task(
    name="capture-orderbook",
    task_run_name="capture-{unit.exchange}-{unit.market}-{unit.symbol}",
    retries=0,  # the capture reconnects itself within its window; a rerun would be a new window
    cache_policy=NO_CACHE,
)
def capture_order_book_task(
    unit: Unit, settings: Settings, seconds: float, every: str, levels: int
) -> UnitResult:
    """Keep one order book from its WebSocket stream for `seconds`; land snapshots every `every`."""
    return log_result(capture_unit(unit, settings, seconds, every, levels))


STEPS = {ingest_market_unit: ingest_market_unit_task, capture_unit: capture_order_book_task}
