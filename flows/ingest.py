"""The candle ingest flow: every (exchange, symbol, timeframe) unit lands or fails on its own."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.parameters import run_form
from flows.reporting import final_state, publish_summary, run_name
from flows.runners import unit_task_runner
from tasks import candles, signals
from tasks.executor import TaskExecutor
from vectorflow.config import load_settings
from vectorflow.pipelines.candles import ingest_job, plan_ingest

#: A scheduled run catching up after downtime fits well inside this; longer histories are what
#: `backfill` is for (no timeout, resumable).
INGEST_TIMEOUT_S = 1800


@flow(
    name="ingest-candles",
    flow_run_name=run_name("ingest", "exchanges", "timeframes"),
    task_runner=unit_task_runner(),
    timeout_seconds=INGEST_TIMEOUT_S,
)
def ingest_candles(
    exchanges: list[str] | None = None,
    markets: list[str] | None = None,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """Fetch closed candles into the lake, then the signals of the series that got new bars.

    Args:
        since: First candle open time, UTC (e.g. 2024-01-01T00:00:00Z). Empty: each series
            resumes after its last stored candle (a new one starts [series] first_run_days back).
        until: End of the range, exclusive, UTC (e.g. 2024-02-01T00:00:00Z). Empty: now.
        data_dir: For Python callers only (a deployment's runs use VECTORFLOW_DATA_DIR).
    """
    logger = get_run_logger()
    settings = load_settings(data_dir)
    plan = plan_ingest(
        **settings.series.pick(exchanges, markets, symbols, timeframes), since=since, until=until
    )
    logger.info("%d units into %s", len(plan.units), settings.storage.root)
    results = ingest_job(settings, plan, TaskExecutor(candles.STEPS, signals.STEPS))
    candles.refresh_catalog_task(settings)
    publish_summary("ingest-candles", results, settings)
    return final_state(results, logger)


run_form(ingest_candles)
