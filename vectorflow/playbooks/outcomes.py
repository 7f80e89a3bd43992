"""The grading run: every stored directional playbook not graded yet, against the lake's candles.

Outcomes are stored once final (`playbook_outcomes`, keyed by playbook and evaluation time);
a playbook still open inside its horizon is left for a later run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass

from vectorflow.lake.schema import PLAYBOOK_OUTCOMES
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.grading import Plan, grade
from vectorflow.playbooks.inputs import last_close_time, read_candles
from vectorflow.playbooks.record import PlaybookRecord
from vectorflow.playbooks.store import ungraded_playbooks, write_rows
from vectorflow.timeframes import ms_to_iso, now_ms, timeframe_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GradeReport:
    """What a grading run did."""

    candidates: int
    graded: int
    pending: int
    rows: tuple[dict, ...] = ()


def plan_of(record: PlaybookRecord) -> Plan:
    """The levels of a stored directional playbook."""
    return Plan(
        side=record.bias,
        entry_low=record.entry_low,
        entry_high=record.entry_high,
        stop=record.stop_loss,
        targets=record.targets,
    )


def _outcome_row(record: PlaybookRecord, candles, newest: int, horizon: int, evaluated_at: int):
    """The outcome row of one playbook from its series' candles, or None while it is open."""
    step = timeframe_ms(record.timeframe)
    end = record.as_of + horizon * step
    times = candles["open_time"]
    bars = candles[(times >= record.as_of) & (times < end)]
    outcome = grade(plan_of(record), bars, horizon, horizon_closed=newest >= end)
    if outcome is None:
        return None
    return {
        "playbook_id": record.playbook_id,
        "evaluated_at": evaluated_at,
        "exchange": record.exchange,
        "market": record.market,
        "symbol": record.symbol,
        "timeframe": record.timeframe,
        "as_of": record.as_of,
        "horizon_bars": horizon,
        **asdict(outcome),
    }


def grade_playbooks(lake: Storage, horizon: int) -> GradeReport:
    """Grade every ungraded directional playbook whose outcome is final; store the outcomes."""
    candidates = ungraded_playbooks(lake)
    by_series: dict = defaultdict(list)
    for record in candidates:
        by_series[record.unit].append(record)
    evaluated_at, rows = now_ms(), []
    for unit, records in by_series.items():
        step = timeframe_ms(unit.timeframe)
        first, last = records[0].as_of, records[-1].as_of + horizon * step
        candles = read_candles(lake, unit, first, last)  # one read per series
        newest = last_close_time(lake, unit) or 0
        for record in records:
            row = _outcome_row(record, candles, newest, horizon, evaluated_at)
            if row is not None:
                rows.append(row)
    if rows:
        write_rows(lake, PLAYBOOK_OUTCOMES, rows)
    log.info(
        "graded %d of %d playbooks (%d still open)",
        len(rows),
        len(candidates),
        len(candidates) - len(rows),
    )
    summary = tuple(
        {
            "symbol": r["symbol"],
            "timeframe": r["timeframe"],
            "as_of": ms_to_iso(r["as_of"]),
            "outcome": r["outcome"],
            "r_multiple": r["r_multiple"],
            "bars_to_outcome": r["bars_to_outcome"],
        }
        for r in rows
    )
    return GradeReport(len(candidates), len(rows), len(candidates) - len(rows), summary)
