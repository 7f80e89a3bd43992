"""Playbooks as units: what each stored playbook record, or a series' replay, means for its run."""

from __future__ import annotations

from collections import Counter

from vectorflow.units import Status, Unit, UnitResult

#: Record statuses that are not a playbook: the unit failed, or was not attempted.
NOT_WRITTEN = {"error": Status.FAILED, "skipped_stale": Status.SKIPPED,
               "skipped_budget": Status.SKIPPED}  # fmt: skip
SHOWN = ("as_of", "source", "bias", "confidence", "entry", "stop_loss", "targets", "rr_ratio",
         "cached", "tokens")  # fmt: skip


def playbook_unit(unit: Unit) -> Unit:
    """The playbooks unit of a series."""
    return Unit(unit.exchange, unit.market, unit.symbol, unit.timeframe, "playbooks")


def record_result(record) -> UnitResult:
    """The unit result of one stored playbook record (its status under `playbook`)."""
    status = NOT_WRITTEN.get(record.status, Status.OK)
    summary = record.summary()
    detail = {"playbook": record.status, **{k: summary.get(k) for k in SHOWN}}
    detail["playbook_id"] = record.playbook_id
    return UnitResult(
        playbook_unit(record.unit),
        status,
        rows_written=1,
        first=detail["as_of"],
        last=detail["as_of"],
        error=record.error,
        detail=detail,
    )


def replay_result(unit: Unit, counts: dict[str, int], first: str, last: str) -> UnitResult:
    """The unit result of one series' replay from its counts (`"<source> <status>"`: playbooks
    written, `resumed`: left from an earlier run): failed when a request failed, skipped when the
    token budget ran out (a rerun resumes it), else ok."""
    by_status: Counter = Counter()
    for key, n in counts.items():
        if key != "resumed":
            by_status[key.rsplit(" ", 1)[-1]] += n
    written = sum(by_status.values())
    detail = {"resumed": counts.get("resumed", 0),
              "playbooks": ", ".join(f"{n} {k}" for k, n in sorted(counts.items())
                                     if k != "resumed")}  # fmt: skip
    result = UnitResult(playbook_unit(unit), rows_written=written, first=first, last=last,
                        detail=detail)  # fmt: skip
    if by_status["error"]:
        result.status = Status.FAILED
        result.error = f"{by_status['error']} requests failed (rerun the replay to retry them)"
    elif by_status["skipped_budget"]:
        result.status = Status.SKIPPED
        result.error = f"token budget spent: {by_status['skipped_budget']} playbooks not written"
    return result
