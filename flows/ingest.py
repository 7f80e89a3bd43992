"""The candle ingest flow: every (exchange, symbol, timeframe) unit lands or fails on its own."""

from __future__ import annotations

from prefect import flow, get_run_logger

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
    exchanges: list[str] | None = None,  # None: the settings file's [series]
    markets: list[str] | None = None,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """Fetch closed candles into the lake: symbols imply their market (BTC/USDT:USDT is linear).

    since/until: UTC date (2024-01-01) or ISO timestamp, half-open on candle open time;
    without since, each series resumes after its last stored candle.
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
