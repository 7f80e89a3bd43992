"""The `nightly` flow: compaction → signals refresh → backtests of every series → grading.

Every step is reported in the result (`ok` or `failed: ...`); a failed step never stops the
next ones, and a series whose backtest fails is reported while the others still run.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Failed

from flows.backtest import publish
from flows.maintenance import compact_lake
from flows.reporting import publish_summary, run_name
from tasks.backtest import backtest_series_task, configured_series_task
from tasks.candles import refresh_catalog_task
from tasks.playbooks import grade_task
from tasks.signals import refresh_signals_of
from vectorflow.backtest.run import BacktestRequest, check_options
from vectorflow.ingest import SeriesUnit
from vectorflow.settings import load_settings


def _outcome(state, step: str, logger) -> str:
    """`ok`, or `failed: <why>` (logged) for a finished task or subflow state."""
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, BaseException) or state.is_failed():
        logger.warning("%s failed: %s", step, state.message or outcome)
        return f"failed: {state.message or outcome}"[:500]
    return "ok"


def _failed(ref, error: BaseException) -> dict:
    return {**ref.model_dump(), "error": f"{type(error).__name__}: {error}"[:500]}


@flow(name="nightly", flow_run_name=run_name("nightly"), timeout_seconds=4 * 3600)
def nightly(
    strategies: list[str] | None = None,
    grid: str | None = None,
    walk_forward: bool | None = None,
    metric: str | None = None,
    data_dir: str | None = None,
) -> dict:
    """Compaction, signals, then every configured series' backtests, then playbook grading.

    Series, grid, split and costs come from the `[backtest]` settings; parameters override.
    """
    logger = get_run_logger()
    settings = load_settings(data_dir)
    check_options(strategies or settings.backtest.strategies, grid, metric)
    steps = {"compaction": _outcome(compact_lake(data_dir=data_dir, return_state=True),
                                    "compaction", logger)}  # fmt: skip
    series = configured_series_task(settings)
    units = [SeriesUnit(r.exchange, r.market, r.symbol, r.timeframe) for r in series]
    failed_signals = refresh_signals_of(units, settings)
    steps["signals refresh"] = f"failed: {'; '.join(failed_signals)}" if failed_signals else "ok"
    summaries, failures = [], []
    for ref in series:
        request = BacktestRequest(ref, tuple(strategies or ()), grid, walk_forward, metric)
        state = backtest_series_task(settings, request, return_state=True)
        outcome = state.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            failures.append(_failed(ref, outcome))
        else:
            summaries.append(outcome)
    refresh_catalog_task(settings)
    steps["playbook grading"] = _outcome(
        grade_task(settings, return_state=True), "playbook grading", logger
    )
    publish(summaries, key="nightly-backtest-leaders")
    steps_rows = [
        {"dataset": f"step: {step}", "status": "ok" if done == "ok" else "failed", "error": done}
        for step, done in steps.items()
    ]
    series_rows = [{**s, "status": "ok"} for s in summaries] + [
        {**f, "status": "failed"} for f in failures
    ]
    publish_summary("nightly", steps_rows + series_rows, settings)
    result = {"steps": steps, "series": summaries, "failed": failures}
    if failures:
        names = ", ".join(f"{f['exchange']} {f['market']} {f['symbol']}" for f in failures)
        return Failed(message=f"{len(failures)} series failed: {names}", data=result)
    return result
