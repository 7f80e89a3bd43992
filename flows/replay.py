"""The replay flow: playbooks at every as_of of a range, graded, and the sources compared."""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.parameters import UtcTime, run_form
from flows.playbooks import concurrency, flow_run_id
from flows.reporting import final_state, publish_summary, run_name
from tasks.candles import refresh_catalog_task
from tasks.playbooks import (
    check_grok_task,
    market_ticks_task,
    replay_report_task,
    replay_series_task,
)
from tasks.signals import refresh_signals
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput
from vectorflow.pipelines.candles import plan_ingest
from vectorflow.pipelines.playbooks import playbook_unit
from vectorflow.playbooks.budget import end_run_budget
from vectorflow.playbooks.compare import comparison_markdown
from vectorflow.playbooks.replay import replay_plan
from vectorflow.units import UnitResult


@flow(
    name="replay-playbooks",
    flow_run_name=run_name("replay", "source", "exchanges", "timeframes"),
    task_runner=ThreadPoolTaskRunner(max_workers=concurrency()),
)
def replay_playbooks(
    start: str,
    end: str,
    every: str = "4h",
    source: str = "rules",  # rules | grok | both
    exchanges: list[str] | None = None,  # None: the settings file's [series]
    markets: list[str] | None = None,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    token_budget: int | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """Write playbooks at start, start + every, ... up to end from the data as it was then,
    grade them and compare the sources on the same as_of set (a markdown artifact).

    Rerunning the same replay resumes it. The series' stale stored signals are recomputed
    first. One unit per series: what its replay wrote (failed when a request failed, skipped
    when the budget ran out).

    Args:
        start: First as_of of the replay (UTC); only data at or before each as_of is used.
        end: Last as_of of the replay (UTC), inclusive.
        every: Step between as_of times, e.g. 4h or 1d.
        source: Which writer: rules, grok (needs XAI_API_KEY or the Secret block) or both.
        exchanges: Exchanges of the series. Empty: the settings file's [series] exchanges.
        markets: Markets of the series (spot, linear). Empty: the settings file's [series].
        symbols: Unified symbols, e.g. BTC/USDT:USDT. Empty: the settings file's [series].
        timeframes: Candle timeframes. Empty: the settings file's [series] timeframes.
        token_budget: Most tokens Grok may spend on this replay. Empty: the settings value;
            repeated inputs are answered from the cache for free.
        data_dir: For Python callers only (a deployment's runs use VECTORFLOW_DATA_DIR).
    """
    logger = get_run_logger()
    settings = _settings(data_dir, token_budget)
    units = plan_ingest(**settings.series.pick(exchanges, markets, symbols, timeframes)).units
    plan = replay_plan(units, start, end, every, source)
    mode = _mode(settings, plan.sources, source)
    notes = refresh_signals(list(plan.units), settings)  # stale signals recomputed, then read
    ticks = market_ticks_task(settings, list(plan.units))
    replay_id, budget_key = plan.replay_id(settings.playbooks.model), flow_run_id()
    logger.info("replay %s: %d series x %d as_of times, %s", replay_id, len(plan.units),
                len(plan.as_ofs), "+".join(plan.sources))
    futures = [
        (unit, replay_series_task.submit(unit, plan, settings, replay_id, budget_key, mode, ticks))
        for unit in plan.units
    ]
    results = []
    for unit, future in futures:
        outcome = future.result(raise_on_failure=False)
        failed = isinstance(outcome, BaseException)
        results.append(UnitResult.of_error(playbook_unit(unit), outcome) if failed else outcome)
    budget = end_run_budget(budget_key)
    if budget is not None and "grok" in plan.sources:
        logger.info("tokens spent: %d of %d", budget.spent, budget.limit)
    report = replay_report_task(settings, plan, replay_id)
    refresh_catalog_task(settings)
    title = f"Replay {report['from']} to {report['to']}: {report['playbooks']} playbooks"
    create_markdown_artifact(
        markdown=comparison_markdown(report["comparison"], title),
        key="replay-playbooks",
        description=f"replay {replay_id}: the sources on the same as_of set",
    )
    publish_summary("replay-playbooks", results, settings, notes)
    return final_state(results, logger)


def _settings(data_dir: str | None, token_budget: int | None):
    """The run's settings, with the token budget given for this run."""
    settings = load_settings(data_dir)
    if token_budget is None:
        return settings
    playbooks = settings.playbooks.model_copy(update={"token_budget": token_budget})
    return settings.with_overrides(playbooks=playbooks)


def _mode(settings, sources: tuple[str, ...], source: str) -> str:
    """`grok` when a source needs Grok and it is there (else the run fails), else `rules`."""
    if "grok" not in sources:
        return "rules"
    mode = check_grok_task(settings)
    if mode["mode"] != "grok":
        raise InvalidInput(f"source {source} needs Grok, which is unavailable: {mode['reason']}")
    return "grok"


run_form(replay_playbooks, start=UtcTime, end=UtcTime,
         source=Literal["rules", "grok", "both"])  # fmt: skip
