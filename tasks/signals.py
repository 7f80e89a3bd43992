"""Signals tasks."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from vectorflow.pipelines.candles import SeriesUnit
from vectorflow.settings import Settings
from vectorflow.pipelines.signals import update_signals


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


def signals_of(units: list[SeriesUnit], settings: Settings) -> dict[SeriesUnit, object]:
    """Store the newly closed bars' signals of each unit at the settings' `signal_timeframes`,
    concurrently; per unit its report (a dict) or the error it ended with (never raised)."""
    futures = {
        unit: update_signals_task.submit(unit, settings)
        for unit in units
        if unit.timeframe in settings.signal_timeframes
    }
    return {unit: future.result(raise_on_failure=False) for unit, future in futures.items()}


def refresh_signals_of(units: list[SeriesUnit], settings: Settings) -> list[str]:
    """Store the newly closed bars' signals of each unit, concurrently; what failed, and why.

    Only units at the settings' `signal_timeframes`. A failure is reported, not raised: what
    uses the signals next (playbooks, backtests) still runs on what is stored.
    """
    failed = []
    for unit, outcome in signals_of(units, settings).items():
        if isinstance(outcome, BaseException):
            get_run_logger().warning("signals of %s failed: %s", unit.label, outcome)
            failed.append(f"signals of {unit.label} failed: {type(outcome).__name__}: {outcome}")
    return failed
