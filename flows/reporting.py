"""What every flow run tells the Prefect UI: a run name that says what ran, and a summary.

Run names read like `ingest binance,bybit 1h,5m 2026-11-26T10:05Z`: the job, the series the run
covers (a parameter left out shows the settings file's `[series]` value) and the scheduled
UTC minute. The markdown summary artifact says what landed, what was skipped or failed and why,
and which circuit breakers are not closed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, Failed

from vectorflow.resilience.guard import guard_for
from vectorflow.settings import Settings, load_settings

#: Row fields that name a unit, in the order they are shown.
UNIT_FIELDS = ("exchange", "market", "symbol", "timeframe", "dataset")


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


def unit_label(row: dict) -> str:
    """`binance spot BTC/USDT 1h` from a result row's unit fields."""
    return " ".join(str(row[f]) for f in UNIT_FIELDS if row.get(f))


def summary_markdown(job: str, rows: list[dict], settings: Settings, notes: list[str]) -> str:
    """The run summary: landed, skipped and failed units, and the breakers not closed."""
    skipped = [r for r in rows if str(r.get("status")).startswith("skipped")]
    failed = [r for r in rows if r.get("status") in ("failed", "error", "invalid")]
    ok = [r for r in rows if r not in skipped and r not in failed]
    written = sum(int(r.get("rows_written") or 0) for r in rows)
    lines = [
        f"### {job}: {len(ok)} of {len(rows)} units ok, {len(skipped)} skipped, "
        f"{len(failed)} failed",
        "",
        f"**Landed:** {written:,} rows." if any("rows_written" in r for r in rows) else "",
    ]
    landed = [r for r in ok if r.get("rows_written")]
    lines += [f"- {unit_label(r)}: {int(r['rows_written']):,} rows" for r in landed]
    for title, group in (("Skipped", skipped), ("Failed", failed)):
        if group:
            lines += ["", f"**{title}:**"]
            lines += [f"- {unit_label(r)}: {str(r.get('error') or '')[:300]}" for r in group]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    lines += ["", _breakers(settings)]
    return "\n".join(lines)


def _breakers(settings: Settings) -> str:
    if not settings.state_path.exists():
        return "**Circuit breakers:** none recorded yet."
    states = guard_for(settings).breakers.states()
    not_closed = [b for b in states if b.state != "closed"]
    if not not_closed:
        return f"**Circuit breakers:** all {len(states)} closed."
    lines = ["**Circuit breakers not closed:**"]
    lines += [f"- {b.kind} {b.target}: {b.state} ({b.reason or 'no reason'})" for b in not_closed]
    return "\n".join(lines)


def publish_summary(
    job: str, rows: list[dict], settings: Settings, notes: list[str] | None = None
) -> str:
    """Publish the run's markdown summary artifact (key `<job>-run-summary`); its text."""
    markdown = summary_markdown(job, rows, settings, notes or [])
    create_markdown_artifact(
        markdown=markdown, key=f"{job}-run-summary", description=f"What the {job} run did"
    )
    return markdown


def final_state(rows: list[dict], logger) -> list[dict] | Completed | Failed:
    """Failed if any unit failed (the message names them); Completed "degraded" if units were
    only skipped by open circuit breakers; else the rows."""
    failed = [r for r in rows if r["status"] == "failed"]
    skipped = [r for r in rows if r["status"] == "skipped"]

    def names(units: list[dict]) -> str:
        return ", ".join(unit_label(r) for r in units)

    also = f"; {len(skipped)} skipped by an open circuit: {names(skipped)}" if skipped else ""
    if failed:
        return Failed(
            message=f"{len(failed)} of {len(rows)} units failed: {names(failed)}{also}", data=rows
        )
    if skipped:
        message = f"degraded: {len(skipped)} of {len(rows)} units skipped by an open circuit: "
        logger.warning("%s%s", message, names(skipped))
        return Completed(message=message + names(skipped), data=rows)
    return rows
