"""The replay flow: playbooks at every as_of of a range, graded, and the sources compared."""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.parameters import UtcTime, run_form
from flows.playbooks import concurrency, flow_run_id
from flows.reporting import final_state, publish_summary, run_name
from tasks import playbooks as playbook_tasks
from tasks import signals as signal_tasks
from tasks.candles import refresh_catalog_task
from tasks.executor import TaskExecutor
from tasks.playbooks import check_grok_task, replay_report_task
from vectorflow.config import load_settings
from vectorflow.pipelines.candles import plan_ingest
from vectorflow.pipelines.playbook_jobs import budgeted, replay_job, replay_mode
from vectorflow.playbooks.compare import comparison_markdown
from vectorflow.playbooks.replay import replay_plan


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
    settings = budgeted(load_settings(data_dir), token_budget)
    units = plan_ingest(**settings.series.pick(exchanges, markets, symbols, timeframes)).units
    plan = replay_plan(units, start, end, every, source)
    mode = replay_mode(plan.sources, source, lambda: check_grok_task(settings))
    replay_id, budget_key = plan.replay_id(settings.playbooks.model), flow_run_id()
    logger.info("replay %s: %d series x %d as_of times, %s", replay_id, len(plan.units),
                len(plan.as_ofs), "+".join(plan.sources))
    executor = TaskExecutor(playbook_tasks.STEPS, signal_tasks.STEPS)
    run = replay_job(settings, plan, executor, replay_id=replay_id, budget_key=budget_key,
                     mode=mode)  # fmt: skip
    report = replay_report_task(settings, plan, replay_id)
    refresh_catalog_task(settings)
    title = f"Replay {report['from']} to {report['to']}: {report['playbooks']} playbooks"
    create_markdown_artifact(
        markdown=comparison_markdown(report["comparison"], title),
        key="replay-playbooks",
        description=f"replay {replay_id}: the sources on the same as_of set",
    )
    publish_summary("replay-playbooks", run.results, settings, run.notes)
    return final_state(run.results, logger)


run_form(replay_playbooks, start=UtcTime, end=UtcTime,
         source=Literal["rules", "grok", "both"])  # fmt: skip
