"""Replay: playbooks at every as_of of a range, from the data as it was then, graded and compared.

The as_of times are T1, T1 + every, ... up to T2 (each a candle close of every series). Each
series' data is loaded once for the whole range (`history.load_history`), and each playbook is
written from its as_of's cut of it: only candles closed, and snapshots, open interest, funding
and signals stamped at or before that time, exactly as a single `--as-of` run reads them.

A replay is identified by its plan (series, range, step, sources, model, prompt and rules
versions): its playbooks carry that id as `run_id`, so running the same replay again resumes
it: the (series, as_of, source) already written with a final status are skipped (a skipped or
failed one is written again), and a Grok
request whose inputs were answered before is answered from the cache. Playbooks are stored in
batches as they are written, so an interrupted replay keeps what it did.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass

from vectorflow.errors import InvalidInput
from vectorflow.lake.schema import PLAYBOOK_OUTCOMES
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.budget import estimate_tokens
from vectorflow.playbooks.compare import compare_sources
from vectorflow.playbooks.contract import PROMPT_VERSION, SYSTEM_PROMPT
from vectorflow.playbooks.history import load_history
from vectorflow.playbooks.outcomes import grade_records
from vectorflow.playbooks.prompt import inputs_hash
from vectorflow.playbooks.record import PlaybookRecord
from vectorflow.playbooks.rules import RULES_VERSION
from vectorflow.playbooks.store import (
    cached_hashes,
    graded_ids,
    series_playbooks,
    write_playbooks,
    write_rows,
)
from vectorflow.playbooks.writer import WriteContext, playbooks_for
from vectorflow.timeframes import is_aligned, ms_to_iso, parse_time, timeframe_ms
from vectorflow.units import Unit

log = logging.getLogger(__name__)

SOURCES = {"rules": ("rules",), "grok": ("grok",), "both": ("rules", "grok")}
MAX_AS_OFS = 100_000  # per series: a typo in --every must not plan millions of playbooks
BATCH = 250  # as_of times written per stored file: at most what an interruption loses
#: not final: a resumed replay writes them again (stale: the candles may have landed since)
RETRY_STATUSES = ("skipped_budget", "skipped_stale", "error")
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_every(text: str) -> int:
    """`30m`, `4h`, `1d`, `1w` as milliseconds; InvalidInput names anything else."""
    found = _DURATION.match(str(text).strip())
    if not found or int(found[1]) == 0:
        raise InvalidInput(f"--every: {text!r} is not a step such as 1h, 4h or 1d")
    return int(found[1]) * _UNIT_MS[found[2]]


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay writes: series, as_of range and step, sources."""

    units: tuple[Unit, ...]
    start_ms: int
    end_ms: int
    every_ms: int
    sources: tuple[str, ...]

    @property
    def as_ofs(self) -> list[int]:
        """T1, T1 + every, ... up to T2."""
        return list(range(self.start_ms, self.end_ms + 1, self.every_ms))

    def replay_id(self, model: str) -> str:
        """A stable id of this replay (the run_id of its playbooks): rerunning it resumes it."""
        parts = [f"{u.exchange}|{u.market}|{u.symbol}|{u.timeframe}" for u in self.units]
        parts += [str(self.start_ms), str(self.end_ms), str(self.every_ms), *self.sources]
        parts += [RULES_VERSION, PROMPT_VERSION, model if "grok" in self.sources else ""]
        digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
        return f"replay-{digest}"


def replay_plan(
    units: tuple[Unit, ...], start: str | int, end: str | int, every: str, source: str
) -> ReplayPlan:
    """A checked plan; InvalidInput names the bad value (one line)."""
    if source not in SOURCES:
        raise InvalidInput(f"--source: {source!r} is not one of {', '.join(SOURCES)}")
    start_ms, end_ms = parse_time(start, name="--from"), parse_time(end, name="--to")
    step = parse_every(every)
    if end_ms < start_ms:
        raise InvalidInput(f"--to {ms_to_iso(end_ms)} is before --from {ms_to_iso(start_ms)}")
    for unit in units:
        bar = timeframe_ms(unit.timeframe)
        if not is_aligned(start_ms, unit.timeframe) or step % bar:
            raise InvalidInput(
                f"--from {ms_to_iso(start_ms)} every {every}: not every time is a close of "
                f"{unit.label}'s {unit.timeframe} candles"
            )
    plan = ReplayPlan(tuple(units), start_ms, end_ms, step, SOURCES[source])
    if len(plan.as_ofs) > MAX_AS_OFS:
        raise InvalidInput(f"{len(plan.as_ofs)} as_of times; at most {MAX_AS_OFS} per replay")
    return plan


def _done(lake: Storage, unit: Unit, plan: ReplayPlan, replay_id: str) -> set[tuple]:
    stored = series_playbooks(lake, unit, plan.start_ms, plan.end_ms, run_id=replay_id)
    return {(r.as_of, r.source) for r in stored if r.status not in RETRY_STATUSES}


def _todo(lake: Storage, unit: Unit, plan: ReplayPlan, replay_id: str) -> dict[int, tuple]:
    """The sources still to write at each as_of of the plan (resuming an earlier run)."""
    done = _done(lake, unit, plan, replay_id)
    todo = {a: tuple(s for s in plan.sources if (a, s) not in done) for a in plan.as_ofs}
    return {a: sources for a, sources in todo.items() if sources}


def replay_series(unit: Unit, plan: ReplayPlan, ctx: WriteContext) -> dict[str, int]:
    """Write the replay's playbooks of one series (ctx.run_id is the replay id); status counts."""
    todo = _todo(ctx.lake, unit, plan, ctx.run_id)
    counts: Counter = Counter()
    counts["resumed"] = len(plan.as_ofs) * len(plan.sources) - sum(map(len, todo.values()))
    times = sorted(todo)
    history = load_history(ctx.lake, unit, times, ctx.load_options(unit)) if times else None
    for first in range(0, len(times), BATCH):
        records: list[PlaybookRecord] = []
        for as_of in times[first : first + BATCH]:
            records += playbooks_for(history.inputs_at(as_of), ctx, todo[as_of])
        write_playbooks(ctx.lake, records)  # stored as it goes: an interruption keeps these
        counts.update(f"{r.source} {r.status}" for r in records)
    log.info("%s: replay %s: %s", unit.label, ctx.run_id, dict(counts))
    return dict(counts)


def estimate_series(unit: Unit, plan: ReplayPlan, ctx: WriteContext) -> dict[str, int]:
    """What a Grok replay of one series would ask: requests, answers cached, tokens (estimated)."""
    todo = {a: s for a, s in _todo(ctx.lake, unit, plan, ctx.run_id).items() if "grok" in s}
    out = Counter(requests=0, cached=0, stale=0, tokens=0)
    if not todo:
        return dict(out)
    known = cached_hashes(ctx.lake, unit, plan.start_ms, plan.end_ms)
    history = load_history(ctx.lake, unit, sorted(todo), ctx.load_options(unit))
    for as_of in sorted(todo):
        inputs = history.inputs_at(as_of)
        if inputs.stale is not None:
            out["stale"] += 1
            continue
        text = ctx.payload(inputs)
        if inputs_hash(ctx.config.model, text) in known:
            out["cached"] += 1
            continue
        out["requests"] += 1
        out["tokens"] += estimate_tokens(SYSTEM_PROMPT, text)
    return dict(out)


def replay_records(lake: Storage, plan: ReplayPlan, replay_id: str) -> list[PlaybookRecord]:
    """Every playbook the replay stored (this run's and the runs it resumed)."""
    return [
        record
        for unit in plan.units
        for record in series_playbooks(lake, unit, plan.start_ms, plan.end_ms, run_id=replay_id)
    ]


def replay_report(lake: Storage, plan: ReplayPlan, replay_id: str, horizon: int) -> dict:
    """Grade the replay's playbooks (storing new outcomes) and compare the sources."""
    records = replay_records(lake, plan, replay_id)
    rows = grade_records(lake, records, horizon)
    cached = {r.playbook_id for r in records if r.cached}  # graded under the original's id
    fresh = [row for row in rows if row["playbook_id"] not in cached]
    known = graded_ids(lake, [row["playbook_id"] for row in fresh])
    new = [row for row in fresh if row["playbook_id"] not in known]
    if new:
        write_rows(lake, PLAYBOOK_OUTCOMES, new)
    outcomes = {row["playbook_id"]: row for row in rows}
    return {
        "replay_id": replay_id,
        "from": ms_to_iso(plan.start_ms),
        "to": ms_to_iso(plan.end_ms),
        "every_ms": plan.every_ms,
        "series": len(plan.units),
        "as_ofs": len(plan.as_ofs),
        "playbooks": len(records),
        "graded": len(rows),
        "outcomes_stored": len(new),
        "comparison": compare_sources(records, outcomes, plan.sources),
    }
