"""Backtests as a pipeline: every requested series' plan, each (series, strategy) grid, then each
series' landing, run by any executor (threads here, Prefect tasks on Dask in the nightly).

A strategy that fails fails alone (its series still lands the others); a series whose plan or
landing fails is reported with its error. The same steps back `vectorflow backtest`, the
`backtest` flow and the nightly's backtests.
"""

from __future__ import annotations

from vectorflow.backtest.run import (
    BacktestRequest,
    failed_run,
    finish_series,
    plan_series,
    run_strategy,
)
from vectorflow.pipelines.run import Executor
from vectorflow.settings import Settings
from vectorflow.units import error_text


def _failure(request: BacktestRequest, error: BaseException, strategy: str | None = None) -> dict:
    row = {**request.ref.model_dump(), "error": error_text(error)[:500]}
    return {**row, "strategy": strategy} if strategy else row


def backtests_job(
    settings: Settings, requests: list[BacktestRequest], executor: Executor
) -> tuple[list[dict], list[dict]]:
    """Backtest every request; (each landed series' summary, the failures: a series' own, or
    a strategy's with its `strategy` named)."""
    plans = executor.map(plan_series, [(settings, request) for request in requests])
    failures = [_failure(r, p) for r, p in zip(requests, plans, strict=True)
                if isinstance(p, BaseException)]  # fmt: skip
    planned = [p for p in plans if not isinstance(p, BaseException)]
    calls = [(plan, name) for plan in planned for name in plan.strategies]
    outcomes = iter(executor.map(run_strategy, calls))
    landings = []
    for plan in planned:
        done = []
        for name in plan.strategies:
            outcome = next(outcomes)
            if isinstance(outcome, BaseException):
                failures.append(_failure(plan.request, outcome, name))
                outcome = failed_run(name, error_text(outcome)[:500])
            done.append(outcome)
        landings.append((settings, plan, done))
    summaries = []
    for (_, plan, _), landed in zip(landings, executor.map(finish_series, landings), strict=True):
        if isinstance(landed, BaseException):
            failures.append(_failure(plan.request, landed))
        else:
            summaries.append(landed.summary())
    return summaries, failures


def backtest_failure(summary: dict | None, failures: list[dict]) -> str:
    """What a single series' backtest says when it failed: its strategies that failed, or the
    series' own error."""
    if summary is None:
        return f"the backtest failed: {failures[0]['error']}"
    return f"strategies failed: {', '.join(summary['failed'])}"
