"""The nightly's work as one pipeline: compaction, signals, every configured series' backtests,
then playbook grading; each step reported, a failed step never stopping the next.

The `nightly` flow runs the same steps as a compaction subflow, signals tasks and a backtests
subflow on the task runner `[backtest] dask_address` chooses; `vectorflow nightly` runs them
here, in this process.
"""

from __future__ import annotations

from vectorflow.backtest.run import BacktestRequest, configured_series
from vectorflow.pipelines.backtests import backtests_job
from vectorflow.pipelines.maintenance import check_datasets, compact_job
from vectorflow.pipelines.playbooks import grade
from vectorflow.pipelines.run import Executor
from vectorflow.pipelines.signals import signals_job, stored_signal_series
from vectorflow.settings import Settings
from vectorflow.units import Status, Unit, error_text


def _step(results) -> str:
    """`ok`, or `failed: ...` naming the units that failed."""
    failed = [f"{r.unit.label}: {r.error}" for r in results if r.status == Status.FAILED]
    return f"failed: {'; '.join(failed)}"[:500] if failed else "ok"


def nightly_job(
    settings: Settings,
    executor: Executor,
    *,
    strategies: list[str] | None = None,
    grid: str | None = None,
    walk_forward: bool | None = None,
    metric: str | None = None,
) -> dict:
    """`{"steps": {step: "ok" | "failed: ..."}, "series": [summary...], "failed": [...]}`."""
    steps = {"compaction": _step(compact_job(settings, check_datasets(None), executor))}
    series = configured_series(settings)
    units = [Unit(r.exchange, r.market, r.symbol, r.timeframe) for r in series]
    every = [*units, *stored_signal_series(settings)]  # stale ones recomputed
    steps["signals refresh"] = _step(signals_job(settings, every, executor))
    requests = [BacktestRequest(r, tuple(strategies or ()), grid, walk_forward, metric)
                for r in series]  # fmt: skip
    summaries, failures = backtests_job(settings, requests, executor)
    try:
        grade(settings)
        steps["playbook grading"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a step that fails is reported, the run goes on
        steps["playbook grading"] = f"failed: {error_text(exc)}"[:500]
    return {"steps": steps, "series": summaries, "failed": failures}
