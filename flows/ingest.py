"""The candle ingest flow: every (exchange, symbol, timeframe) unit lands or fails on its own."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.reporting import final_state, publish_summary, run_name
from tasks.candles import ingest_series_task, load_markets_task, refresh_catalog_task
from tasks.signals import signals_of
from vectorflow.errors import CircuitOpen, InvalidInput
from vectorflow.pipelines.candles import UnitReport, plan_ingest
from vectorflow.settings import load_settings

#: A scheduled run catching up after downtime fits well inside this; longer histories are what
#: `backfill` is for (no timeout, resumable).
INGEST_TIMEOUT_S = 1800


def _workers() -> int:
    """Concurrent units from the settings (a broken settings file fails the run, not the import)."""
    try:
        return load_settings().workers
    except InvalidInput:
        return 4


def _failed_row(unit, error: BaseException) -> dict:
    notes = " ".join(getattr(error, "__notes__", []))
    report = UnitReport(
        unit.exchange,
        unit.market,
        unit.symbol,
        unit.timeframe,
        status="skipped" if isinstance(error, CircuitOpen) else "failed",
        error=f"{type(error).__name__}: {error} {notes}".strip(),
    )
    return report.as_row()


@flow(
    name="ingest-candles",
    flow_run_name=run_name("ingest", "exchanges", "timeframes"),
    task_runner=ThreadPoolTaskRunner(max_workers=_workers()),
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
    market_futures = {
        ex: load_markets_task.submit(ex, settings)
        for ex in dict.fromkeys(u.exchange for u in plan.units)
    }
    market_errors = {}
    for exchange, future in market_futures.items():
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            market_errors[exchange] = outcome
    futures = {
        unit: ingest_series_task.submit(unit, plan.since_ms, plan.until_ms, settings)
        for unit in plan.units
        if unit.exchange not in market_errors
    }
    rows = []
    for unit in plan.units:
        if unit.exchange in market_errors:
            rows.append(_failed_row(unit, market_errors[unit.exchange]))
            continue
        outcome = futures[unit].result(raise_on_failure=False)
        rows.append(_failed_row(unit, outcome) if isinstance(outcome, BaseException) else outcome)
    add_signals(plan.units, rows, settings, logger)
    refresh_catalog_task(settings)
    create_table_artifact(
        table=rows,
        key="ingest-candles-summary",
        description="Rows written, first/last candle and gaps per unit",
    )
    publish_summary("ingest-candles", rows, settings)
    return final_state(rows, logger)


def add_signals(units, rows: list[dict], settings, logger) -> None:
    """Signals of the newly closed bars of each series that landed rows; failures are logged.

    Only for the settings' `signal_timeframes`; run after all units, so that a series' finer
    candles (used for TPO) have landed too.
    """
    pairs = list(zip(units, rows, strict=True))
    landed = [unit for unit, row in pairs if row["status"] == "ok" and row["rows_written"]]
    outcomes = signals_of(landed, settings)
    for unit, row in pairs:
        outcome = outcomes.get(unit)
        row["signal_rows"] = outcome["rows_written"] if isinstance(outcome, dict) else 0
        if isinstance(outcome, BaseException):
            logger.error("signals of %s failed: %s", unit.label, outcome)
            row["error"] = f"signals: {type(outcome).__name__}: {outcome}"
