"""Signals tasks."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from vectorflow.ingest import SeriesUnit
from vectorflow.settings import Settings
from vectorflow.signal_store import update_signals


@task(
    name="update-signals",
    cache_policy=NO_CACHE,
    task_run_name="signals-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.timeframe}",
)
def update_signals_task(unit: SeriesUnit, settings: Settings) -> dict:
    """Store the signals of the bars of one series closed since its last stored as_of."""
    report = update_signals(unit, settings)
    get_run_logger().info(
        "%s: %d signal rows, %d trap events, last as_of %s",
        unit.label,
        report.rows_written,
        report.events_written,
        report.last_as_of,
    )
    return report.as_row()
