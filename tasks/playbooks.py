"""Playbook tasks: choose the writer, look up ticks, write one series' playbook (or replay it),
grade past playbooks, post new ones — one library step each (`STEPS` maps them for
`vectorflow.pipelines.playbook_jobs`).

The xAI key is read inside the steps (XAI_API_KEY, or the Prefect Secret block
`vectorflow-xai-api-key`, which the `tasks` package lets `vectorflow.secrets` read), never
passed as a parameter, never logged: the client holds it only as a SecretStr and cuts it out of
every error text.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.candles import log_result
from vectorflow.pipelines.playbook_jobs import (
    notify_new,
    replay_one,
    write_playbook,
    writer_mode,
)
from vectorflow.pipelines.playbook_ticks import market_ticks
from vectorflow.pipelines.playbooks import grade
from vectorflow.playbooks.replay import ReplayPlan, replay_report
from vectorflow.settings import Settings
from vectorflow.units import Unit, UnitResult

SERIES = "{unit.exchange}-{unit.market}-{unit.symbol}-{unit.timeframe}"


@task(name="check-grok", cache_policy=NO_CACHE)
def check_grok_task(settings: Settings) -> dict:
    """Grok or rules for this run; a model the API does not offer fails the run, naming it."""
    mode = writer_mode(settings)
    get_run_logger().info("%s playbooks: %s", mode["mode"], mode["reason"])
    return mode


@task(name="market-ticks", cache_policy=NO_CACHE)
def market_ticks_task(units: list[Unit], settings: Settings) -> dict[str, float]:
    """Tick size per market from the cached ccxt markets (the rest are inferred from prices)."""
    ticks = market_ticks(units, settings)
    get_run_logger().info("tick sizes of %d of %d series' markets", len(ticks), len(units))
    return ticks


@task(name="write-playbook", cache_policy=NO_CACHE, task_run_name=f"playbook-{SERIES}")
def playbook_task(
    unit: Unit, settings: Settings, run_id: str, mode: str, as_of_ms: int | None, ticks: dict
) -> list[UnitResult]:
    """Write, validate and store the playbook of one series; one result per stored record."""
    results = write_playbook(unit, settings, run_id, mode, as_of_ms, ticks)
    for result in results:
        d = result.detail
        get_run_logger().info("%s: %s %s %s (%s tokens)", result.unit.label, d.get("source"),
                              d.get("playbook"), d.get("bias") or "no direction",
                              d.get("tokens"))  # fmt: skip
    return results


@task(name="replay-series", cache_policy=NO_CACHE, task_run_name=f"replay-{SERIES}")
def replay_series_task(
    unit: Unit, plan: ReplayPlan, settings: Settings, replay_id: str, budget_key: str,
    mode: str, ticks: dict,
) -> UnitResult:  # fmt: skip
    """Write one series' replay playbooks (resuming); what it wrote, by source and status."""
    return log_result(replay_one(unit, plan, settings, replay_id, budget_key, mode, ticks))


@task(name="replay-report", cache_policy=NO_CACHE)
def replay_report_task(settings: Settings, plan: ReplayPlan, replay_id: str) -> dict:
    """Grade the replay's playbooks and compare the sources on the same as_of set."""
    return replay_report(settings.storage, plan, replay_id, settings.playbooks.horizon_bars)


@task(name="notify-playbooks", cache_policy=NO_CACHE)
def notify_task(settings: Settings, playbook_ids: list[str]) -> dict:
    """Post the new actionable playbooks among these to the webhook, each once."""
    return notify_new(settings, playbook_ids)


@task(name="grade-playbooks", cache_policy=NO_CACHE)
def grade_task(settings: Settings, horizon_bars: int | None = None) -> dict:
    """Grade every past playbook whose outcome is final; the run's counts and outcome rows."""
    report = grade(settings, horizon_bars)
    get_run_logger().info("graded %d of %d playbooks, %d still open", report["graded"],
                          report["candidates"], report["pending"])  # fmt: skip
    return report


STEPS = {writer_mode: check_grok_task, market_ticks: market_ticks_task,
         write_playbook: playbook_task, replay_one: replay_series_task,
         notify_new: notify_task}  # fmt: skip
