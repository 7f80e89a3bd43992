"""Playbooks as pipelines: signals brought up to date, the writer chosen (Grok or rules), one
playbook per series and `as_of` (or a series' replay), new actionable ones posted.

Written once against an Executor: `vectorflow playbook` runs the steps in this process, the
`generate-playbooks` and `replay-playbooks` flows as Prefect tasks. The xAI key is read inside
the steps that need it (`vectorflow.secrets.resolve_secret`: the environment, and in a flow's
process the Prefect Secret block), never passed as an argument.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from vectorflow.errors import CircuitOpen, InvalidInput, TransientError
from vectorflow.pipelines.playbook_ticks import market_ticks
from vectorflow.pipelines.playbooks import playbook_unit, record_result, replay_result
from vectorflow.pipelines.run import Executor
from vectorflow.pipelines.signals import signals_job
from vectorflow.playbooks.budget import end_run_budget, run_budget
from vectorflow.playbooks.client import grok_client
from vectorflow.playbooks.notify import notify_stored
from vectorflow.playbooks.replay import ReplayPlan, replay_series
from vectorflow.playbooks.writer import WriteContext, write_series_playbook
from vectorflow.secrets import resolve_secret
from vectorflow.settings import Settings
from vectorflow.timeframes import ms_to_iso, now_ms
from vectorflow.units import Unit, UnitResult, result_of
from vectorflow.values import count


def writer_mode(settings: Settings) -> dict:
    """Grok or rules for this run: the key, the breaker, and the model checked against /models.

    A model the API does not offer (or a refused key) raises, naming it.
    """
    key = resolve_secret("XAI_API_KEY")
    if key is None:
        return {"mode": "rules", "reason": "no XAI_API_KEY (nor Secret block): rule-based"}
    client = grok_client(settings, key)  # its guard keeps the (playbook, grok) breaker
    try:
        client.check_model()
    except (CircuitOpen, TransientError) as exc:
        return {"mode": "rules", "reason": f"grok unavailable ({exc}): rule-based"}
    finally:
        client.close()
    return {"mode": "grok", "reason": f"grok model {settings.playbooks.model}"}


def budgeted(settings: Settings, token_budget: int | None) -> Settings:
    """The settings with this run's token budget (None: the settings' own)."""
    if token_budget is None:
        return settings
    count(token_budget, name="token_budget")
    changed = settings.playbooks.model_copy(update={"token_budget": token_budget})
    return settings.with_overrides(playbooks=changed)


def replay_mode(sources: tuple[str, ...], source: str, choose: Callable[[], dict]) -> str:
    """`grok` when a replay's source needs Grok and `choose()` (the writer check) offers it,
    InvalidInput when it does not; `rules` when no source needs it (nothing is checked)."""
    if "grok" not in sources:
        return "rules"
    mode = choose()
    if mode["mode"] != "grok":
        raise InvalidInput(f"source {source} needs Grok, which is unavailable: {mode['reason']}")
    return "grok"


def write_context(
    settings: Settings, run_id: str, mode: str, ticks: dict, budget_key: str | None = None
) -> WriteContext:
    """The write context of one step; its client (when Grok) must be closed by the caller."""
    key = resolve_secret("XAI_API_KEY") if mode == "grok" else None
    return WriteContext(
        config=settings.playbooks,
        lake=settings.storage,
        run_id=run_id,
        client=grok_client(settings, key) if key is not None else None,
        budget=run_budget(budget_key or run_id, settings.playbooks.token_budget),
        timeframes=tuple(settings.series.timeframes),
        tpo_row_sizes=dict(settings.tpo_row_sizes),
        ticks=dict(ticks),
    )


def write_playbook(
    unit: Unit, settings: Settings, run_id: str, mode: str, as_of_ms: int | None, ticks: dict
) -> list[UnitResult]:
    """Write, validate and store the playbook of one series; one result per stored record."""
    ctx = write_context(settings, run_id, mode, ticks)
    try:
        records = write_series_playbook(unit, ctx, as_of_ms=as_of_ms)
    finally:
        if ctx.client is not None:
            ctx.client.close()
    return [record_result(r) for r in records]


def replay_one(
    unit: Unit, plan: ReplayPlan, settings: Settings, replay_id: str, budget_key: str,
    mode: str, ticks: dict,
) -> UnitResult:  # fmt: skip
    """Write one series' replay playbooks (resuming); what it wrote, by source and status."""
    ctx, started = write_context(settings, replay_id, mode, ticks, budget_key), time.monotonic()
    try:
        counts = replay_series(unit, plan, ctx)
    finally:
        if ctx.client is not None:
            ctx.client.close()
    result = replay_result(unit, counts, ms_to_iso(plan.start_ms), ms_to_iso(plan.end_ms))
    result.seconds = round(time.monotonic() - started, 3)
    return result


def notify_new(settings: Settings, playbook_ids: list[str]) -> dict:
    """Post the new actionable playbooks among these to the webhook, each once."""
    report = notify_stored(
        settings.storage, playbook_ids, settings.webhook_url,
        settings.data_dir / "notifications.db",
        min_confidence=settings.notifications.playbooks_min_confidence, now_ms=now_ms(),
    )  # fmt: skip
    return {"posted": report.posted, "already": report.already, "failed": report.failed}


@dataclass
class PlaybookRun:
    """What a playbooks run did: a result per record, the writer, and notes for its summary."""

    results: list[UnitResult]
    mode: dict
    notes: list[str]


def _first(executor: Executor, step, *args):
    """`step(*args)` through the executor; what it returned, or raised."""
    (outcome,) = executor.map(step, [args])
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _refreshed(settings: Settings, units: list[Unit], executor: Executor) -> list[str]:
    """Signals brought up to date first (playbooks read only current signals); failure notes."""
    results = signals_job(settings, units, executor)
    return [f"signals of {r.unit.label} failed: {r.error}" for r in results if not r.ok]


def playbooks_job(
    settings: Settings,
    units: list[Unit],
    as_ofs: list[int | None],
    executor: Executor,
    run_id: str,
) -> PlaybookRun:
    """A playbook per series at each `as_of` (None: its newest closed candle); new actionable
    ones posted when `[notifications] playbooks` is on."""
    notes = _refreshed(settings, units, executor)
    mode = _first(executor, writer_mode, settings)
    ticks = _first(executor, market_ticks, units, settings)
    calls = [(u, settings, run_id, mode["mode"], t, ticks) for t in as_ofs for u in units]
    results = []
    for (unit, *_), outcome in zip(calls, executor.map(write_playbook, calls), strict=True):
        failed = isinstance(outcome, BaseException)
        results += [result_of(playbook_unit(unit), outcome)] if failed else outcome
    budget = end_run_budget(run_id)
    if budget is not None and mode["mode"] == "grok":
        notes.append(f"tokens spent: {budget.spent:,} of {budget.limit:,}")
    if settings.notifications.playbooks and settings.webhook_url:
        ids = [r.detail["playbook_id"] for r in results if r.ok]
        notes.append(f"notifications: {_first(executor, notify_new, settings, ids)}")
    return PlaybookRun(results, mode, notes)


def replay_job(
    settings: Settings,
    plan: ReplayPlan,
    executor: Executor,
    *,
    replay_id: str,
    budget_key: str,
    mode: str,
) -> PlaybookRun:
    """Every series' replay over the plan's as_of times (resumable); one result per series."""
    units = list(plan.units)
    notes = _refreshed(settings, units, executor)
    ticks = _first(executor, market_ticks, units, settings)
    calls = [(u, plan, settings, replay_id, budget_key, mode, ticks) for u in units]
    outcomes = executor.map(replay_one, calls)
    results = [result_of(playbook_unit(u), o) for u, o in zip(units, outcomes, strict=True)]
    budget = end_run_budget(budget_key)
    if budget is not None and "grok" in plan.sources:
        notes.append(f"tokens spent: {budget.spent:,} of {budget.limit:,}")
    return PlaybookRun(results, {"mode": mode}, notes)
