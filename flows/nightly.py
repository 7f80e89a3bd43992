"""The `nightly` flow: compaction → signals refresh → backtests of every series → grading.

Compaction, the signals refresh and playbook grading are other parts of the pipeline: each step
runs when its flow or task exists (NIGHTLY_HOOKS) and is reported "not available" otherwise;
a failed step is reported and the backtests still run. A series whose backtest fails is
reported; the others still run.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Failed

from flows.backtest import publish
from tasks.backtest import backtest_series_task, configured_series_task
from tasks.candles import refresh_catalog_task
from vectorflow.backtest.run import BacktestRequest, check_options
from vectorflow.settings import load_settings


def _compaction(settings, data_dir):
    from flows.maintenance import compact_lake  # a subflow: every partition, with retention

    return compact_lake(data_dir=data_dir, return_state=True)


def _signals_refresh(settings, data_dir):
    # TODO(signals): the signals flow/task of the signals work is not in flows/ or tasks/ yet;
    # call it here (e.g. `from tasks.signals import refresh_signals_task`). Until then the
    # signal strategies compute their signals from the stored candles (vectorflow.signals).
    from tasks.signals import refresh_signals_task  # absent: the step is "not available"

    return refresh_signals_task(settings, return_state=True)


def _grading(settings, data_dir):
    from tasks.playbooks import grade_task

    return grade_task(settings, return_state=True)


#: The steps around the backtests: (name, call) - a call whose module is missing is skipped.
NIGHTLY_HOOKS = {
    "before": [("compaction", _compaction), ("signals refresh", _signals_refresh)],
    "after": [("playbook grading", _grading)],
}


def _run_hooks(when: str, settings, data_dir, logger) -> dict[str, str]:
    """Run the steps of `when` that exist; their outcome (ok, failed: ..., not available)."""
    done = {}
    for step, call in NIGHTLY_HOOKS[when]:
        try:
            state = call(settings, data_dir)
        except ImportError as exc:
            logger.info("%s: not available yet (%s)", step, exc)
            done[step] = "not available"
            continue
        outcome = state.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            logger.warning("%s failed: %s", step, outcome)
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
    steps = _run_hooks("before", settings, data_dir, logger)
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
    steps |= _run_hooks("after", settings, data_dir, logger)
    publish(summaries, key="nightly-backtest-leaders")
    result = {"steps": steps, "series": summaries, "failed": failures}
    if failures:
        names = ", ".join(f"{f['exchange']} {f['market']} {f['symbol']}" for f in failures)
        return Failed(message=f"{len(failures)} series failed: {names}", data=result)
    return result
