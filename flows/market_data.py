"""Order books, open interest and funding: every unit lands or fails on its own.

A sibling of the candle flow rather than part of it: order books are snapshots worth taking
every minute, open interest and funding change every few minutes to hours, candles every hour;
one flow per cadence keeps each schedule simple and a slow exchange from delaying the others.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.ingest import _workers
from flows.reporting import final_state, publish_summary, run_name
from tasks.candles import load_markets_task, refresh_catalog_task
from tasks.market_data import capture_order_book_task, ingest_market_unit_task
from vectorflow.errors import InvalidInput
from vectorflow.pipelines.market_data import (
    MARKET_DATASETS,
    failed_report,
    plan_market_data,
    units_by_exchange,
)
from vectorflow.pipelines.orderbook_stream import check_capture
from vectorflow.settings import load_settings


@flow(
    name="ingest-market-data",
    flow_run_name=run_name("market-data", "datasets", "exchanges"),
    task_runner=ThreadPoolTaskRunner(max_workers=_workers()),
    timeout_seconds=600,  # order books every minute, derivatives every 15: never this long
)
def ingest_market_data(
    exchanges: list[str] | None = None,  # None: the settings file's [series]
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
    """Order book snapshots (top `levels` per side), open interest (at `period`) and funding.

    Open interest and funding resume after what is stored (a first run starts 30 days back,
    or at since); Binance serves open interest for the last 30 days only. Order books: one REST
    snapshot per run (`mode="rest"`), or (`mode="stream"`, `levels` up to 200) each book kept
    from its WebSocket stream for `stream_seconds`, a snapshot landed every `stream_every`.
    """
    logger = get_run_logger()
    settings = load_settings(data_dir)
    series = settings.series.pick(exchanges, markets, symbols)
    levels = levels or settings.series.orderbook_levels
    plan = plan_market_data(
        series["exchanges"],
        series["markets"],
        series["symbols"],
        datasets,
        period=period or settings.series.derivatives_period,
        levels=levels,
        since=since,
        until=until,
    )
    if mode not in ("rest", "stream"):
        raise InvalidInput(f"mode {mode!r}: expected rest or stream")
    for unit in plan.units:
        if mode == "stream" and unit.dataset == "orderbook_levels":
            check_capture(unit.exchange, unit.market, stream_seconds, levels, stream_every)
    logger.info("%d units into %s (order books: %s)", len(plan.units), settings.storage.root, mode)
    loads = {ex: load_markets_task.submit(ex, settings) for ex in units_by_exchange(plan.units)}
    broken = {}
    for exchange, future in loads.items():
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            broken[exchange] = outcome
    futures = {}
    for unit in plan.units:
        if unit.exchange in broken:
            continue
        if mode == "stream" and unit.dataset == "orderbook_levels":
            futures[unit] = capture_order_book_task.submit(
                unit, stream_seconds, stream_every, settings
            )
        else:
            futures[unit] = ingest_market_unit_task.submit(
                unit, plan.since_ms, plan.until_ms, settings
            )
    rows = []
    for unit in plan.units:
        outcome = broken.get(unit.exchange) or futures[unit].result(raise_on_failure=False)
        rows.append(failed_report(unit, outcome) if isinstance(outcome, BaseException) else outcome)
    refresh_catalog_task(settings)
    create_table_artifact(
        table=rows,
        key="ingest-market-data-summary",
        description="Rows written, first/last time and requests per unit",
    )
    publish_summary("ingest-market-data", rows, settings)
    return final_state(rows, logger)
