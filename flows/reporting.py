"""What every flow run tells the Prefect UI: a run name that says what ran, and a summary.

Run names read like `ingest binance,bybit 1h,5m 2026-11-26T10:05Z`: the job, the series the run
covers (a parameter left out shows the settings file's `[series]` value) and the scheduled
UTC minute. The markdown summary artifact says what landed, what was skipped or failed and why,
and which circuit breakers are not closed. Every artifact of a run is keyed by its deployment
(`snapshot-orderbooks-units`), or by its flow when it runs outside one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed, Failed

from flows.failures import quiet_expected_failures
from vectorflow.config import load_settings
from vectorflow.resilience.guard import guard_for
from vectorflow.settings import Settings
from vectorflow.units import Status, UnitResult, UnitsFailed, counts, run_message

quiet_expected_failures()  # every flow module imports this one


def _configured_series(parameters: dict):
    """The settings file's `[series]` (None when the file is broken: the run fails on it)."""
    try:
        return load_settings(parameters.get("data_dir")).series
    except Exception:
        return None


def run_name(job: str, *fields: str) -> Callable[[], str]:
    """A `flow_run_name` callable: job, the values of `fields`, the scheduled UTC minute."""

    def name() -> str:
        from prefect.runtime import flow_run

        parameters = flow_run.parameters or {}
        unset = [f for f in fields if parameters.get(f) is None]
        series = _configured_series(parameters) if unset else None  # read the file once
        parts = [job]
        for field in fields:
            value = parameters.get(field)
            if value is None:
                value = getattr(series, field, None)
            if value:
                parts.append(",".join(map(str, value)) if isinstance(value, list) else str(value))
        when = flow_run.scheduled_start_time or datetime.now(UTC)
        parts.append(when.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ"))
        return " ".join(parts)

    return name


def artifact_family(job: str) -> str:
    """The key prefix of a run's artifacts: its deployment's name, else `job`."""
    from prefect.runtime import deployment

    return deployment.name or job


def summary_markdown(job: str, results: list[UnitResult], settings: Settings,
                     notes: list[str]) -> str:  # fmt: skip
    """The run summary: landed, skipped and failed units, and the breakers not closed."""
    n = counts(results)
    written = sum(r.rows_written for r in results)
    lines = [
        f"### {job}: {n[Status.OK]} of {len(results)} units ok, {n[Status.SKIPPED]} skipped, "
        f"{n[Status.FAILED]} failed",
        "",
        f"**Landed:** {written:,} rows.",
    ]
    lines += [f"- {r.unit.label}: {r.rows_written:,} rows" for r in results
              if r.ok and r.rows_written]  # fmt: skip
    for title, status in (("Skipped", Status.SKIPPED), ("Failed", Status.FAILED)):
        group = [r for r in results if r.status == status]
        if group:
            lines += ["", f"**{title}:**"]
            lines += [f"- {r.unit.label}: {str(r.error or '')[:300]}" for r in group]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    lines += ["", _breakers(settings)]
    return "\n".join(lines)


def _breakers(settings: Settings) -> str:
    states = guard_for(settings).breakers.states() if settings.state_path.exists() else []
    if not states:
        return "**Circuit breakers:** none has tripped yet."
    not_closed = [b for b in states if b.state != "closed"]
    if not not_closed:
        return f"**Circuit breakers:** all {len(states)} closed."
    lines = ["**Circuit breakers not closed:**"]
    lines += [f"- {b.kind} {b.target}: {b.state} ({b.reason or 'no reason'})" for b in not_closed]
    return "\n".join(lines)


def publish_summary(
    job: str, results: list[UnitResult], settings: Settings, notes: list[str] | None = None
) -> str:
    """Publish the run's unit table and markdown summary artifacts (keys `<family>-units` and
    `<family>-run-summary`, `artifact_family`); the markdown."""
    family = artifact_family(job)
    markdown = summary_markdown(family, results, settings, notes or [])
    create_table_artifact(
        table=[_status_first(r.as_row()) for r in results] or [{"units": 0}],
        key=f"{family}-units",
        description=f"What each unit of the {family} run did (status and error first)",
    )
    create_markdown_artifact(
        markdown=markdown, key=f"{family}-run-summary", description=f"What the {family} run did"
    )
    return markdown


def _status_first(row: dict) -> dict:
    """A table row with status and error in the first columns, where a person looks first."""
    return {"status": row.get("status"), "error": row.get("error"), **row}


def tally(results: list[UnitResult], key: str) -> str:
    """How many results have each value of `detail[key]`: `3 valid, 1 error`."""
    found = Counter(str(r.detail.get(key) or r.status) for r in results)
    return ", ".join(f"{n} {value}" for value, n in found.most_common()) or "none"


def cell(value: object) -> str:
    """A value as a markdown table cell: numbers rounded to 4 significant digits, parameter
    dicts (or their JSON) as `fast=10 slow=30`, nothing as an em dash."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, dict):
        return " ".join(f"{k}={cell(v)}" for k, v in value.items())
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows as a markdown table: every column any row has (or `columns`), in first-seen order."""
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def report_link(path: str | Path, settings: Settings) -> str:
    """Where a browser opens a report under `settings.reports_dir`: its URL under
    `settings.reports_url` (`vectorflow up` serves the folder), else the file itself."""
    path = Path(path)
    if settings.reports_url is None:
        return path.as_uri()
    try:
        relative = path.relative_to(settings.reports_dir)
    except ValueError:
        return path.as_uri()
    return f"{settings.reports_url.rstrip('/')}/{quote(relative.as_posix())}"


def final_state(results: list[UnitResult], logger) -> list[dict] | Completed | Failed:
    """Failed if any unit failed (the message names them, the rows ride on the exception);
    Completed "degraded" if units were only skipped (an open circuit breaker); else the rows."""
    rows = [r.as_row() for r in results]
    message = run_message(results)
    if any(r.status == Status.FAILED for r in results):
        return Failed(message=message, data=UnitsFailed(message, rows))
    if message:
        logger.warning("%s", message)
        return Completed(message=message, data=rows)
    return rows
