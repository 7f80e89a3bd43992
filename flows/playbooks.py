"""Playbook flows: signals → playbooks for every series (concurrently, bounded), and grading."""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.parameters import run_form
from flows.reporting import final_state, publish_summary, run_name, tally
from tasks import playbooks as playbook_tasks
from tasks import signals as signal_tasks
from tasks.candles import refresh_catalog_task
from tasks.executor import TaskExecutor
from tasks.playbooks import grade_task
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput
from vectorflow.pipelines.candles import plan_ingest
from vectorflow.pipelines.playbook_jobs import budgeted, playbooks_job
from vectorflow.timeframes import now_ms, parse_time


def concurrency() -> int:
    """Series written at once, from the settings (a broken file fails the run, not the import)."""
    try:
        return load_settings().playbooks.concurrency
    except InvalidInput:
        return 20


def flow_run_id() -> str:
    """This flow run's id (a fresh uuid outside a run)."""
    from prefect.runtime import flow_run

    return str(flow_run.id or uuid.uuid4())


@flow(
    name="generate-playbooks",
    flow_run_name=run_name("playbooks", "exchanges", "timeframes"),
    task_runner=ThreadPoolTaskRunner(max_workers=concurrency()),
    timeout_seconds=1800,
)
def generate_playbooks(
    exchanges: list[str] | None = None,
    markets: list[str] | None = None,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    as_of: str | list[str] | None = None,
    token_budget: int | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """Write a playbook for each series from its stored candles and signals (Grok or rules).

    The xAI key comes from XAI_API_KEY or the Prefect Secret block, never from a parameter.

    Args:
        as_of: UTC times of the playbooks (e.g. 2024-01-01T12:00:00Z), several for a history
            that grading can score. Empty: each series' newest closed candle (stale when that
            is more than two timeframes old).
        token_budget: Grok tokens this run may spend. Empty: [playbooks] token_budget.
        data_dir: For Python callers only (a deployment's runs use VECTORFLOW_DATA_DIR).
    """
    logger = get_run_logger()
    settings = budgeted(load_settings(data_dir), token_budget)
    plan = plan_ingest(**settings.series.pick(exchanges, markets, symbols, timeframes))
    times = [as_of] if isinstance(as_of, str) else list(as_of or [])
    as_ofs = [parse_time(t, name="as_of", latest=now_ms()) for t in times] or [None]
    run_id = flow_run_id()
    logger.info("%d series x %d times, run %s", len(plan.units), len(as_ofs), run_id)
    executor = TaskExecutor(playbook_tasks.STEPS, signal_tasks.STEPS)
    run = playbooks_job(settings, list(plan.units), as_ofs, executor, run_id)
    refresh_catalog_task(settings)
    by_status = f"{run.mode['mode']} playbooks by status: {tally(run.results, 'playbook')}"
    publish_summary("generate-playbooks", run.results, settings, [by_status, *run.notes])
    return final_state(run.results, logger)


@flow(name="grade-playbooks")
def grade_playbooks_flow(horizon_bars: int | None = None, data_dir: str | None = None) -> dict:
    """Grade past playbooks against the candles that followed them (playbook_outcomes)."""
    settings = load_settings(data_dir)
    report = grade_task(settings, horizon_bars)
    refresh_catalog_task(settings)
    create_table_artifact(
        table=report["rows"] or [{"graded": 0}],
        key="playbook-outcomes",
        description=f"{report['graded']} playbooks graded, {report['pending']} still open",
    )
    return report


run_form(generate_playbooks)
