"""Playbook flows: signals → playbooks for every series (concurrently, bounded), and grading."""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.parameters import run_form
from flows.reporting import final_state, publish_summary, run_name, tally
from tasks.candles import refresh_catalog_task
from tasks.playbooks import (
    check_grok_task,
    grade_task,
    market_ticks_task,
    notify_task,
    playbook_task,
)
from tasks.signals import refresh_signals
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput
from vectorflow.pipelines.candles import plan_ingest
from vectorflow.pipelines.playbooks import playbook_unit
from vectorflow.playbooks.budget import end_run_budget
from vectorflow.timeframes import parse_time
from vectorflow.units import UnitResult


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
    settings = load_settings(data_dir)
    if token_budget is not None:
        playbooks = settings.playbooks.model_copy(update={"token_budget": token_budget})
        settings = settings.with_overrides(playbooks=playbooks)
    plan = plan_ingest(**settings.series.pick(exchanges, markets, symbols, timeframes))
    times = [as_of] if isinstance(as_of, str) else list(as_of or [])
    as_ofs = [parse_time(t, name="as_of") for t in times] or [None]
    notes = refresh_signals(list(plan.units), settings)  # signals -> playbooks
    mode = check_grok_task(settings)
    ticks = market_ticks_task(settings, list(plan.units))
    run_id = flow_run_id()
    logger.info("%d series, %s playbooks, run %s", len(plan.units), mode["mode"], run_id)
    futures = [
        (unit, playbook_task.submit(unit, settings, run_id, mode["mode"], as_of_ms, ticks))
        for as_of_ms in as_ofs
        for unit in plan.units
    ]
    results = []
    for unit, future in futures:
        outcome = future.result(raise_on_failure=False)
        failed = isinstance(outcome, BaseException)
        results += [UnitResult.of_error(playbook_unit(unit), outcome)] if failed else outcome
    budget = end_run_budget(run_id)
    if budget is not None and mode["mode"] == "grok":
        logger.info("tokens spent: %d of %d", budget.spent, budget.limit)
    if settings.notifications.playbooks and settings.webhook_url:
        notify_task(settings, [r.detail["playbook_id"] for r in results if r.ok])
    refresh_catalog_task(settings)
    notes = [f"{mode['mode']} playbooks by status: {tally(results, 'playbook')}", *notes]
    publish_summary("generate-playbooks", results, settings, notes)
    return final_state(results, logger)


@flow(name="grade-playbooks")
def grade_playbooks_flow(horizon_bars: int | None = None, data_dir: str | None = None) -> dict:
    """Grade past playbooks against the candles that followed them (playbook_outcomes)."""
    settings = load_settings(data_dir)
    if horizon_bars is not None:
        playbooks = settings.playbooks.model_copy(update={"horizon_bars": horizon_bars})
        settings = settings.with_overrides(playbooks=playbooks)
    report = grade_task(settings)
    refresh_catalog_task(settings)
    create_table_artifact(
        table=report["rows"] or [{"graded": 0}],
        key="playbook-outcomes",
        description=f"{report['graded']} playbooks graded, {report['pending']} still open",
    )
    return report


run_form(generate_playbooks)
