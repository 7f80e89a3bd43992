"""Order books, open interest and funding: every unit lands or fails on its own.

A sibling of the candle flow rather than part of it: order books are snapshots worth taking
every minute, open interest and funding change every few minutes to hours, candles every hour;
one flow per cadence keeps each schedule simple and a slow exchange from delaying the others.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger

from flows.parameters import run_form
from flows.reporting import final_state, publish_summary, run_name
from flows.runners import unit_task_runner
from tasks import candles, market_data, signals
from tasks.executor import TaskExecutor
from vectorflow.config import load_settings
from vectorflow.pipelines.market_data import MARKET_DATASETS, market_data_job, plan_market_data


@flow(
    name="ingest-market-data",
    flow_run_name=run_name("market-data", "datasets", "exchanges"),
    task_runner=unit_task_runner(),
    timeout_seconds=600,  # order books every minute, derivatives every 15: never this long
)
def ingest_market_data(
    exchanges: list[str] | None = None,
    markets: list[str] | None = None,
    symbols: list[str] | None = None,
    datasets: list[str] = list(MARKET_DATASETS),  # noqa: B006
    period: str | None = None,
    levels: int | None = None,
    since: str | None = None,
    until: str | None = None,
    data_dir: str | None = None,
    mode: Literal["rest", "stream"] = "rest",
    stream_seconds: float = 60.0,
    stream_every: str = "1s",
) -> list[dict]:
    """Order book snapshots, open interest and funding rates of the configured markets.

    Open interest and funding resume after what is stored (a first run starts 30 days back,
    or at since); Binance serves open interest for the last 30 days only.
    New open interest or funding rows make the signals of the bars they cover stale: those
    perpetuals' signals are brought up to date after.

    Args:
        datasets: What to fetch: order book snapshots (orderbook_levels), open interest and
            funding rates (perpetuals only).
        period: Period of the open interest history. Empty: [series] derivatives_period.
        levels: Order book levels kept per side (REST: up to 1000; stream: up to 200). Empty:
            [series] orderbook_levels.
        since: Open interest and funding from this UTC time (e.g. 2024-01-01T00:00:00Z).
            Empty: resume after what is stored.
        until: Open interest and funding up to this UTC time, exclusive. Empty: now.
        data_dir: For Python callers only (a deployment's runs use VECTORFLOW_DATA_DIR).
        mode: Order books as one REST snapshot per run (rest), or kept from the exchange's
            WebSocket stream for stream_seconds (stream).
        stream_seconds: How long stream mode keeps the books (seconds).
        stream_every: How often stream mode lands a snapshot (e.g. 1s, 5s).
    """
    logger = get_run_logger()
    settings = load_settings(data_dir)
    series = settings.series.pick(exchanges, markets, symbols)
    plan = plan_market_data(
        series["exchanges"],
        series["markets"],
        series["symbols"],
        datasets,
        period=period or settings.series.derivatives_period,
        levels=levels or settings.series.orderbook_levels,
        since=since,
        until=until,
    )
    logger.info("%d units into %s (order books: %s)", len(plan.units), settings.storage.root, mode)
    executor = TaskExecutor(candles.STEPS, market_data.STEPS, signals.STEPS)
    results = market_data_job(
        settings, plan, executor, mode=mode, stream_seconds=stream_seconds,
        stream_every=stream_every,
    )  # fmt: skip
    candles.refresh_catalog_task(settings)
    publish_summary("ingest-market-data", results, settings)
    return final_state(results, logger)


run_form(ingest_market_data)
