"""Signals tasks."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.candles import log_result
from tasks.executor import TaskExecutor
from vectorflow.pipelines.signals import signals_job, stored_signal_series, update_signals
from vectorflow.settings import Settings
from vectorflow.units import Unit, UnitResult


@task(
    name="update-signals",
    cache_policy=NO_CACHE,
    task_run_name="signals-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.timeframe}",
)
def update_signals_task(unit: Unit, settings: Settings) -> UnitResult:
    """Bring the stored signals of one series up to date: new bars, and stale ones recomputed."""
    return log_result(update_signals(unit, settings))


STEPS = {update_signals: update_signals_task}


def refresh_signals(units: list[Unit], settings: Settings) -> list[str]:
    """Bring the signals of each unit (at the settings' `signal_timeframes`) up to date as
    tasks, concurrently; a line per failure. A failure is reported, not raised: what uses the
    signals next (playbooks, backtests) still runs on what is stored."""
    results = signals_job(settings, units, TaskExecutor(STEPS))
    return [f"signals of {r.unit.label} failed: {r.error}" for r in results if not r.ok]


def refresh_every_series(units: list[Unit], settings: Settings) -> list[str]:
    """`refresh_signals` of `units` and of every series with stored or configured signals."""
    return refresh_signals([*units, *stored_signal_series(settings)], settings)
