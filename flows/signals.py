"""The signals flow: bring every series' stored signals up to date from the lake."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.parameters import run_form
from flows.reporting import final_state, publish_summary, run_name
from flows.runners import unit_task_runner
from tasks import candles, signals
from tasks.executor import TaskExecutor
from vectorflow.config import load_settings
from vectorflow.pipelines.candles import plan_ingest
from vectorflow.pipelines.signals import signals_job


@flow(
    name="refresh-signals",
    flow_run_name=run_name("signals", "exchanges", "timeframes"),
    task_runner=unit_task_runner(),
    timeout_seconds=1800,
)
def refresh_signals(
    exchanges: list[str] | None = None,
    markets: list[str] | None = None,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """Bring every configured series' signals up to date: new bars, and stale ones recomputed.

    Args:
        data_dir: For Python callers only (a deployment's runs use VECTORFLOW_DATA_DIR).
    """
    logger = get_run_logger()
    settings = load_settings(data_dir)
    plan = plan_ingest(**settings.series.pick(exchanges, markets, symbols, timeframes))
    results = signals_job(settings, list(plan.units), TaskExecutor(signals.STEPS))
    candles.refresh_catalog_task(settings)
    publish_summary("refresh-signals", results, settings)
    return final_state(results, logger)


run_form(refresh_signals)
