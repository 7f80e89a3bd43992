"""The `nightly` flow: compaction → signals refresh → backtests of every series → grading.

Every step is reported in the result (`ok` or `failed: ...`); a failed step never stops the
next ones, and a series whose backtest fails is reported while the others still run.

The backtests run in the `nightly-backtests` subflow, on the task runner `[backtest]
dask_address` chooses (`flows/runners.py`): per series a plan task (the lake reads), one task
per strategy (its grid over every window: pure compute, spread over the runner's workers), then
a landing task (rows, report). The numbers do not depend on the runner. A strategy task that
fails (a broken user strategy) is reported on its own; the series' other strategies still land.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.states import Failed

from flows.backtest import best_out_of_sample, publish
from flows.maintenance import compact_lake
from flows.parameters import run_form
from flows.reporting import artifact_family, publish_summary, run_name
from flows.runners import backtest_task_runner
from tasks.backtest import STEPS as backtest_steps
from tasks.backtest import configured_series_task
from tasks.candles import refresh_catalog_task
from tasks.executor import TaskExecutor
from tasks.playbooks import grade_task
from tasks.signals import refresh_every_series
from vectorflow.backtest.run import BacktestRequest, check_options
from vectorflow.config import load_settings
from vectorflow.pipelines.backtests import backtests_job
from vectorflow.settings.backtest import SeriesRef
from vectorflow.units import Status, Unit, UnitResult, UnitsFailed


def _outcome(state, step: str, logger) -> str:
    """`ok`, or `failed: <why>` (logged) for a finished task or subflow state."""
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, BaseException) or state.is_failed():
        logger.warning("%s failed: %s", step, state.message or outcome)
        return f"failed: {state.message or outcome}"[:500]
    return "ok"


def _failed(ref, error: str) -> dict:
    return {**ref.model_dump(), "error": error[:500]}


def _results(summaries: list[dict], failures: list[dict]) -> list[UnitResult]:
    """The backtested series as unit results (runs stored as rows); a series some of whose
    strategies failed is failed, with the rows its other strategies landed."""

    def unit(s: dict) -> Unit:
        return Unit(s["exchange"], s["market"], s["symbol"], s["timeframe"], "backtests")

    def result(s: dict) -> UnitResult:
        failed = "; ".join(f"{name}: {why}" for name, why in s.get("failed", {}).items())
        return UnitResult(unit(s), Status.FAILED if failed else Status.OK,
                          rows_written=int(s.get("runs") or 0), error=failed or None,
                          detail={"trades": s.get("trades")})  # fmt: skip

    series_failed = [f for f in failures if not f.get("strategy")]  # the others: in `s`
    return [result(s) for s in summaries] + [
        UnitResult(unit(f), Status.FAILED, error=f["error"]) for f in series_failed
    ]


def _backtest_run_name() -> str:
    """`nightly-backtests 4 series 2026-11-26T02:00Z`: what the subflow run covers."""
    from prefect.runtime import flow_run

    series = (flow_run.parameters or {}).get("series") or []
    return f"nightly-backtests {len(series)} series {datetime.now(UTC):%Y-%m-%dT%H:%MZ}"


def backtest_notes(summaries: list[dict], failures: list[dict]) -> list[str]:
    """What the backtests did, for the run summary: series, strategies, the best result."""
    strategies = sorted({r["strategy"] for s in summaries for r in s.get("leaderboard", [])})
    runs, trades = (sum(int(s.get(k) or 0) for s in summaries) for k in ("runs", "trades"))
    series_failed = sum(not f.get("strategy") for f in failures)
    broken = sorted({f["strategy"] for f in failures if f.get("strategy")})
    notes = [
        f"backtests: {len(summaries)} series backtested, {series_failed} failed; strategies "
        f"run: {', '.join(strategies) or 'none'}; {runs:,} runs, {trades:,} trades",
    ]
    if broken:
        notes.append(f"strategies failed: {', '.join(broken)}")
    if best := best_out_of_sample(summaries):
        notes.append(f"best out of sample: {best}")
    return notes


@flow(name="nightly-backtests", flow_run_name=_backtest_run_name)
def nightly_backtests(
    series: list[SeriesRef],
    strategies: list[str] | None = None,
    grid: str | None = None,
    walk_forward: bool | None = None,
    metric: str | None = None,
    data_dir: str | None = None,
) -> dict:
    """Backtest every series: plans, then every (series, strategy) on this flow's task runner,
    then each series' landing. `{"series": [summary...], "failed": [{..., "error"}...]}`."""
    settings = load_settings(data_dir)
    requests = [BacktestRequest(r, tuple(strategies or ()), grid, walk_forward, metric)
                for r in series]  # fmt: skip
    summaries, failures = backtests_job(settings, requests, TaskExecutor(backtest_steps))
    return {"series": summaries, "failed": failures}


@flow(name="nightly", flow_run_name=run_name("nightly"), timeout_seconds=4 * 3600)
def nightly(
    strategies: list[str] | None = None,
    grid: str | None = None,
    walk_forward: bool | None = None,
    metric: str | None = None,
    data_dir: str | None = None,
) -> dict:
    """Compaction, every series' signals, then every configured series' backtests, then grading.

    Series, grid, split and costs come from the `[backtest]` settings; parameters override.

    Args:
        strategies: Strategies to run on every series. Empty: [backtest] strategies, or every
            strategy.
        grid: Parameter grid of each strategy (default or small). Empty: [backtest] grid.
        walk_forward: Rolling in-sample/out-of-sample windows instead of one split. Empty:
            [backtest] walk_forward.
        metric: In-sample metric that picks the parameters. Empty: [backtest] metric.
        data_dir: For Python callers only (a deployment's runs use VECTORFLOW_DATA_DIR).
    """
    logger = get_run_logger()
    settings = load_settings(data_dir)
    check_options(strategies or settings.backtest.strategies, grid, metric, settings)
    steps = {"compaction": _outcome(compact_lake(data_dir=data_dir, return_state=True),
                                    "compaction", logger)}  # fmt: skip
    series = configured_series_task(settings)
    units = [Unit(r.exchange, r.market, r.symbol, r.timeframe) for r in series]
    failed_signals = refresh_every_series(units, settings)  # stale ones recomputed
    steps["signals refresh"] = f"failed: {'; '.join(failed_signals)}" if failed_signals else "ok"
    backtests = nightly_backtests.with_options(
        task_runner=backtest_task_runner(settings.backtest.dask_address)
    )
    state = backtests(series, strategies, grid, walk_forward, metric, str(settings.data_dir),
                      return_state=True)  # fmt: skip
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, BaseException) or state.is_failed():
        why = f"backtests failed: {state.message or outcome}"
        logger.warning(why)
        summaries, failures = [], [_failed(ref, why) for ref in series]
    else:
        summaries, failures = outcome["series"], outcome["failed"]
    refresh_catalog_task(settings)
    steps["playbook grading"] = _outcome(
        grade_task(settings, return_state=True), "playbook grading", logger
    )
    publish(summaries, artifact_family("nightly"), settings)
    notes = [*backtest_notes(summaries, failures), *(f"{s}: {done}" for s, done in steps.items())]
    publish_summary("nightly", _results(summaries, failures), settings, notes)
    result = {"steps": steps, "series": summaries, "failed": failures}
    if failures:
        names = ", ".join(
            f"{f['exchange']} {f['market']} {f['symbol']}"
            + (f" {f['strategy']}" if f.get("strategy") else "")
            for f in failures
        )
        message = f"{len(failures)} series failed: {names}"
        return Failed(message=message, data=UnitsFailed(message, result))
    return result


run_form(nightly)
