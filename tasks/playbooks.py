"""Playbook tasks: check the model, look up ticks, write one series' playbook (or replay it),
grade past playbooks, post new ones.

The xAI key is read here, inside the tasks (XAI_API_KEY, or the Prefect Secret block
`vectorflow-xai-api-key`: `tasks.secrets.resolve`), never passed as a parameter, never logged: the
client holds it only as a SecretStr and cuts it out of every error text.
"""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.candles import log_result
from tasks.secrets import resolve
from vectorflow.errors import CircuitOpen, TransientError
from vectorflow.pipelines.playbook_ticks import market_ticks
from vectorflow.pipelines.playbooks import record_result, replay_result
from vectorflow.playbooks.budget import run_budget
from vectorflow.playbooks.client import grok_client
from vectorflow.playbooks.notify import notify_stored
from vectorflow.playbooks.outcomes import grade_playbooks
from vectorflow.playbooks.replay import ReplayPlan, replay_report, replay_series
from vectorflow.playbooks.writer import WriteContext, write_series_playbook
from vectorflow.settings import Settings
from vectorflow.timeframes import ms_to_iso, now_ms
from vectorflow.units import Unit, UnitResult


@task(name="check-grok", cache_policy=NO_CACHE)
def check_grok_task(settings: Settings) -> dict:
    """Grok or rules for this run: the key, the breaker, and the model checked against /models.

    A model the API does not offer (or a refused key) fails the run with a message naming it.
    """
    logger = get_run_logger()
    key = resolve("XAI_API_KEY")
    if key is None:
        logger.info("no XAI_API_KEY and no Secret block: rule-based playbooks")
        return {"mode": "rules", "reason": "no key configured"}
    client = grok_client(settings, key)  # its guard keeps the (playbook, grok) breaker
    try:
        client.check_model()
    except CircuitOpen as exc:
        logger.warning("%s: rule-based playbooks", exc)
        return {"mode": "rules", "reason": str(exc)}
    except TransientError as exc:
        logger.warning("grok unreachable (%s): rule-based playbooks", exc)
        return {"mode": "rules", "reason": str(exc)}
    finally:
        client.close()
    logger.info(
        "grok model %s offered by %s", settings.playbooks.model, settings.playbooks.base_url
    )
    return {"mode": "grok", "reason": None}


@task(name="market-ticks", cache_policy=NO_CACHE)
def market_ticks_task(settings: Settings, units: list[Unit]) -> dict[str, float]:
    """Tick size per market from the cached ccxt markets (the rest are inferred from prices)."""
    ticks = market_ticks(units, settings)
    get_run_logger().info("tick sizes of %d of %d series' markets", len(ticks), len(units))
    return ticks


def _context(
    settings: Settings, run_id: str, mode: str, ticks: dict, budget_key: str | None = None
) -> WriteContext:
    """The write context of one task; the client (when Grok) must be closed by the caller."""
    key = resolve("XAI_API_KEY") if mode == "grok" else None
    client = grok_client(settings, key) if key is not None else None
    return WriteContext(
        config=settings.playbooks,
        lake=settings.storage,
        run_id=run_id,
        client=client,
        budget=run_budget(budget_key or run_id, settings.playbooks.token_budget),
        timeframes=tuple(settings.series.timeframes),
        tpo_row_sizes=dict(settings.tpo_row_sizes),
        ticks=dict(ticks),
    )


@task(
    name="write-playbook",
    cache_policy=NO_CACHE,
    task_run_name="playbook-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.timeframe}",
)
def playbook_task(
    unit: Unit,
    settings: Settings,
    run_id: str,
    mode: str,
    as_of_ms: int | None,
    ticks: dict[str, float] | None = None,
) -> list[UnitResult]:
    """Write, validate and store the playbook of one series; one result per stored record."""
    ctx = _context(settings, run_id, mode, ticks or {})
    try:
        records = write_series_playbook(unit, ctx, as_of_ms=as_of_ms)
    finally:
        if ctx.client is not None:
            ctx.client.close()
    logger = get_run_logger()
    for record in records:
        logger.info(
            "%s: %s %s %s (%d tokens)",
            unit.label,
            record.source,
            record.status,
            record.bias or "no direction",
            record.tokens_in + record.tokens_out,
        )
    return [record_result(r) for r in records]


@task(
    name="replay-series",
    cache_policy=NO_CACHE,
    task_run_name="replay-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.timeframe}",
)
def replay_series_task(
    unit: Unit,
    plan: ReplayPlan,
    settings: Settings,
    replay_id: str,
    budget_key: str,
    mode: str,
    ticks: dict[str, float],
) -> UnitResult:
    """Write one series' replay playbooks (resuming); what it wrote, by source and status."""
    ctx, started = _context(settings, replay_id, mode, ticks, budget_key), time.monotonic()
    try:
        counts = replay_series(unit, plan, ctx)
    finally:
        if ctx.client is not None:
            ctx.client.close()
    result = replay_result(unit, counts, ms_to_iso(plan.start_ms), ms_to_iso(plan.end_ms))
    result.seconds = round(time.monotonic() - started, 3)
    return log_result(result)


@task(name="replay-report", cache_policy=NO_CACHE)
def replay_report_task(settings: Settings, plan: ReplayPlan, replay_id: str) -> dict:
    """Grade the replay's playbooks and compare the sources on the same as_of set."""
    return replay_report(settings.storage, plan, replay_id, settings.playbooks.horizon_bars)


@task(name="notify-playbooks", cache_policy=NO_CACHE)
def notify_task(settings: Settings, playbook_ids: list[str]) -> dict:
    """Post the new actionable playbooks among these to the webhook, each once."""
    report = notify_stored(
        settings.storage,
        playbook_ids,
        settings.webhook_url,
        settings.data_dir / "notifications.db",
        min_confidence=settings.notifications.playbooks_min_confidence,
        now_ms=now_ms(),
    )
    return {"posted": report.posted, "already": report.already, "failed": report.failed}


@task(name="grade-playbooks", cache_policy=NO_CACHE)
def grade_task(settings: Settings) -> dict:
    """Grade every past playbook whose outcome is final; the run's counts and outcome rows."""
    report = grade_playbooks(settings.storage, settings.playbooks.horizon_bars)
    get_run_logger().info(
        "graded %d of %d playbooks, %d still open", report.graded, report.candidates, report.pending
    )
    return {
        "candidates": report.candidates,
        "graded": report.graded,
        "pending": report.pending,
        "rows": list(report.rows),
    }
