"""Playbook tasks: check the model, write one series' playbook, grade past playbooks.

The xAI key is read here, inside the tasks (XAI_API_KEY, or the Prefect Secret block
`vectorflow-xai-api-key`: `tasks.secrets.resolve`), never passed as a parameter, never logged: the
client holds it only as a SecretStr and cuts it out of every error text.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.secrets import resolve
from vectorflow.errors import CircuitOpen, TransientError
from vectorflow.pipelines.playbooks import record_result
from vectorflow.playbooks.budget import run_budget
from vectorflow.playbooks.client import grok_client
from vectorflow.playbooks.outcomes import grade_playbooks
from vectorflow.playbooks.writer import WriteContext, write_series_playbook
from vectorflow.settings import Settings
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


@task(
    name="write-playbook",
    cache_policy=NO_CACHE,
    task_run_name="playbook-{unit.exchange}-{unit.market}-{unit.symbol}-{unit.timeframe}",
)
def playbook_task(
    unit: Unit, settings: Settings, run_id: str, mode: str, as_of_ms: int | None
) -> list[UnitResult]:
    """Write, validate and store the playbook of one series; one result per stored record."""
    key = resolve("XAI_API_KEY") if mode == "grok" else None
    client = grok_client(settings, key) if key is not None else None
    ctx = WriteContext(
        config=settings.playbooks,
        lake=settings.storage,
        run_id=run_id,
        client=client,
        budget=run_budget(run_id, settings.playbooks.token_budget),
    )
    try:
        records = write_series_playbook(unit, ctx, as_of_ms=as_of_ms)
    finally:
        if client is not None:
            client.close()
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
