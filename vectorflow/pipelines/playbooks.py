"""Playbooks as units: what each stored playbook record means for its series' run."""

from __future__ import annotations

from vectorflow.units import Status, Unit, UnitResult

#: Record statuses that are not a playbook: the unit failed, or was not attempted.
NOT_WRITTEN = {"error": Status.FAILED, "skipped_stale": Status.SKIPPED,
               "skipped_budget": Status.SKIPPED}  # fmt: skip
SHOWN = ("as_of", "source", "bias", "confidence", "entry", "stop_loss", "targets", "rr_ratio",
         "cached", "tokens")  # fmt: skip


def record_result(record) -> UnitResult:
    """The unit result of one stored playbook record (its status under `playbook`)."""
    unit = Unit(record.exchange, record.market, record.symbol, record.timeframe, "playbooks")
    status = NOT_WRITTEN.get(record.status, Status.OK)
    summary = record.summary()
    detail = {"playbook": record.status, **{k: summary.get(k) for k in SHOWN}}
    detail["playbook_id"] = record.playbook_id
    return UnitResult(
        unit,
        status,
        rows_written=1,
        first=detail["as_of"],
        last=detail["as_of"],
        error=record.error,
        detail=detail,
    )
