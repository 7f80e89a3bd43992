"""The signals flow: after ingest, each series gets the signals of its newly closed bars."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.reporting import publish_summary, run_name
from tasks.candles import refresh_catalog_task
from tasks.signals import update_signals_task
from vectorflow.pipelines.candles import plan_ingest
from vectorflow.settings import load_settings


@flow(
    name="refresh-signals",
    flow_run_name=run_name("signals", "exchanges", "timeframes"),
    task_runner=ThreadPoolTaskRunner(max_workers=2),
    timeout_seconds=1800,
)
def refresh_signals(
    exchanges: list[str] | None = None,  # None: the settings file's [series]
    markets: list[str] | None = None,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """Compute and store signals (TPO, regime, traps, OI) for every series from the lake."""
    settings = load_settings(data_dir)
    plan = plan_ingest(**settings.series.pick(exchanges, markets, symbols, timeframes))
    futures = [(unit, update_signals_task.submit(unit, settings)) for unit in plan.units]
    rows, failed = [], []
    for unit, future in futures:
        outcome = future.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            failed.append(unit.label)
            outcome = {
                "exchange": unit.exchange,
                "market": unit.market,
                "symbol": unit.symbol,
                "timeframe": unit.timeframe,
                "error": str(outcome),
            }
        rows.append(outcome)
    refresh_catalog_task(settings)
    create_table_artifact(
        table=rows,
        key="signals-summary",
        description="Signal rows and trap events stored per series",
    )
    publish_summary("refresh-signals", rows, settings)
    if failed:
        return Failed(message=f"signals failed for {', '.join(failed)}", data=rows)
    return rows
