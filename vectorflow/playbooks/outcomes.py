"""The grading run: every stored valid playbook not graded yet, against the lake's candles.

Directional playbooks are walked bar by bar (`grading.grade`), `no_trade` ones graded by what
staying out avoided (`grading.grade_no_trade`). Outcomes are stored once final
(`playbook_outcomes`, keyed by playbook and evaluation time); a playbook still open inside its
horizon is left for a later run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, fields

from vectorflow.lake.schema import PLAYBOOK_OUTCOMES
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.bars import Bars
from vectorflow.playbooks.grading import Outcome, Plan, grade, grade_no_trade
from vectorflow.playbooks.reads import last_close_time, read_candles
from vectorflow.playbooks.record import PlaybookRecord
from vectorflow.playbooks.store import ungraded_playbooks, write_rows
from vectorflow.timeframes import ms_to_iso, now_ms, timeframe_ms

log = logging.getLogger(__name__)

GRADABLE = ("ok", "repaired")


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


def is_gradable(record: PlaybookRecord) -> bool:
    """A valid playbook with a bias (a no_trade: with the close and ATR it was written at)."""
    if record.status not in GRADABLE:
        return False
    if record.bias == "no_trade":
        return record.last_price is not None and (record.atr or 0) > 0
    return record.bias in ("long", "short") and record.stop_loss is not None


def outcome_of(record: PlaybookRecord, bars: Bars, horizon: int, closed: bool):
    """The Outcome of one playbook over the bars after its as_of (None while it is open)."""
    if record.bias == "no_trade":
        return grade_no_trade(record.last_price, record.atr, bars, horizon, horizon_closed=closed)
    return grade(plan_of(record), bars, horizon, horizon_closed=closed)


def _row(record: PlaybookRecord, outcome: Outcome, horizon: int, evaluated_at: int) -> dict:
    return {
        "playbook_id": record.playbook_id,
        "evaluated_at": evaluated_at,
        "exchange": record.exchange,
        "market": record.market,
        "symbol": record.symbol,
        "timeframe": record.timeframe,
        "as_of": record.as_of,
        "horizon_bars": horizon,
        "bias": record.bias,
        **{f.name: getattr(outcome, f.name) for f in fields(outcome)},
    }


def grade_records(lake: Storage, records: list[PlaybookRecord], horizon: int) -> list[dict]:
    """Outcome rows of the gradable records whose horizon closed (one candle read per series)."""
    by_series: dict = defaultdict(list)
    for record in records:
        if is_gradable(record):
            by_series[record.unit].append(record)
    evaluated_at, rows = now_ms(), []
    for unit, group in by_series.items():
        group.sort(key=lambda r: r.as_of)
        step = timeframe_ms(unit.timeframe)
        first, last = group[0].as_of, group[-1].as_of + horizon * step
        candles = Bars.of(read_candles(lake, unit, first, last))
        newest = last_close_time(lake, unit) or 0
        for record in group:
            end = record.as_of + horizon * step
            lo, hi = candles.open_time.searchsorted([record.as_of, end])
            outcome = outcome_of(record, candles.cut(lo, hi), horizon, newest >= end)
            if outcome is not None:
                rows.append(_row(record, outcome, horizon, evaluated_at))
    return rows


def grade_playbooks(lake: Storage, horizon: int) -> GradeReport:
    """Grade every ungraded valid playbook whose outcome is final; store the outcomes."""
    candidates = ungraded_playbooks(lake)
    rows = grade_records(lake, candidates, horizon)
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
            "exchange": r["exchange"],
            "market": r["market"],
            "symbol": r["symbol"],
            "timeframe": r["timeframe"],
            "as_of": ms_to_iso(r["as_of"]),
            "bias": r["bias"],
            "outcome": r["outcome"],
            "r_multiple": r["r_multiple"],
            "bars_to_outcome": r["bars_to_outcome"],
        }
        for r in rows
    )
    return GradeReport(len(candidates), len(rows), len(candidates) - len(rows), summary)
