"""The `nightly` flow: compaction → signals refresh → backtests of every series → grading.

Compaction, the signals refresh and playbook grading are other parts of the pipeline: each step
runs when its task exists (see NIGHTLY_HOOKS) and is logged as not available otherwise, so the
backtests never wait for them. A series whose backtest fails is reported; the others still run.
"""

from __future__ import annotations

import importlib

from prefect import flow, get_run_logger
from prefect.states import Failed

from flows.backtest import publish
from tasks.backtest import backtest_series_task, configured_series_task
from tasks.candles import refresh_catalog_task
from vectorflow.backtest.run import BacktestRequest, check_options
from vectorflow.settings import load_settings

#: (step, module, task) called as task(settings), in order around the backtests.
#: TODO(compaction): point at the compaction task once `tasks/` has one (name assumed here).
#: TODO(signals): point at the signals refresh task once `tasks/` has one (name assumed here).
NIGHTLY_HOOKS = {
    "before": [
        ("compaction", "tasks.lake", "compact_lake_task"),
        ("signals refresh", "tasks.signals", "refresh_signals_task"),
    ],
    "after": [("playbook grading", "tasks.playbooks", "grade_task")],
}


def _run_hooks(when: str, settings, logger) -> dict[str, str]:
    """Run the steps of `when` that exist; their outcome (ok, failed: ..., not available)."""
    done = {}
    for step, module, name in NIGHTLY_HOOKS[when]:
        try:
            hook = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            logger.info("%s: not available yet (%s.%s)", step, module, name)
            done[step] = "not available"
            continue
        state = hook(settings, return_state=True)
        outcome = state.result(raise_on_failure=False)
        done[step] = f"failed: {outcome}" if isinstance(outcome, BaseException) else "ok"
    return done


def _failed(ref, error: BaseException) -> dict:
    return {**ref.model_dump(), "error": f"{type(error).__name__}: {error}"[:500]}


@flow(name="nightly")
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
    check_options(strategies or (), grid, metric)
    steps = _run_hooks("before", settings, logger)
    summaries, failures = [], []
    for ref in configured_series_task(settings):
        request = BacktestRequest(ref, tuple(strategies or ()), grid, walk_forward, metric)
        state = backtest_series_task(settings, request, return_state=True)
        outcome = state.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            failures.append(_failed(ref, outcome))
        else:
            summaries.append(outcome)
    refresh_catalog_task(settings)
    steps |= _run_hooks("after", settings, logger)
    publish(summaries, key="nightly-backtest-leaders")
    result = {"steps": steps, "series": summaries, "failed": failures}
    if failures:
        names = ", ".join(f"{f['exchange']} {f['market']} {f['symbol']}" for f in failures)
        return Failed(message=f"{len(failures)} series failed: {names}", data=result)
    return result
