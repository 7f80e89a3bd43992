"""One row of the `playbooks` dataset as a frozen record, built up as a request goes along."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace

from vectorflow.playbooks.contract import Playbook
from vectorflow.timeframes import ms_to_iso
from vectorflow.units import Unit

SOURCES = ("grok", "rules")
STATUSES = ("ok", "repaired", "abstained", "error", "skipped_stale", "skipped_budget")
#: statuses of an answer worth reusing for the same inputs (paid for, and final)
CACHEABLE = ("ok", "repaired", "abstained")


def playbook_id(unit: Unit, as_of_ms: int, source: str, inputs_hash: str, run_id: str) -> str:
    """A stable id: the same series, time, source, inputs and run always give the same id."""
    parts = [unit.exchange, unit.market, unit.symbol, unit.timeframe, str(as_of_ms), source]
    blob = "|".join([*parts, inputs_hash, run_id])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class PlaybookRecord:
    """A playbook request and its outcome: status, the parsed playbook, its cost."""

    playbook_id: str
    created_at: int
    run_id: str | None
    exchange: str
    market: str
    symbol: str
    timeframe: str
    as_of: int
    source: str
    status: str
    cached: bool = False
    model: str | None = None
    prompt_version: str | None = None
    inputs_hash: str | None = None
    bias: str | None = None
    confidence: int | None = None
    entry_type: str | None = None
    entry_low: float | None = None
    entry_high: float | None = None
    entry_trigger: str | None = None
    stop_loss: float | None = None
    targets: tuple[tuple[float, float], ...] = ()
    rr_ratio: float | None = None
    max_risk: float | None = None
    invalidation: str | None = None
    rationale: str | None = None
    levels_used: tuple[str, ...] = ()
    level_prices: tuple[float, ...] = ()  # the data's price of each level used, in order
    valid_until: int | None = None  # as_of + the grading horizon
    tick_size: float | None = None
    last_price: float | None = None
    atr: float | None = None
    regime: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    requests: int = 0
    error: str | None = None
    payload: str | None = None
    raw_answers: tuple[str, ...] = ()

    @property
    def unit(self) -> Unit:
        """The series this playbook is for."""
        return Unit(self.exchange, self.market, self.symbol, self.timeframe)

    def with_playbook(self, pb: Playbook, levels: dict[str, float]) -> PlaybookRecord:
        """A copy carrying the fields of a validated playbook (`levels`: the data's prices)."""
        entry, risk = pb.entry, pb.risk
        return replace(
            self,
            bias=pb.bias,
            confidence=pb.confidence,
            entry_type=entry.type if entry else None,
            entry_low=entry.zone_low if entry else None,
            entry_high=entry.zone_high if entry else None,
            entry_trigger=entry.trigger if entry else None,
            stop_loss=pb.stop_loss,
            targets=tuple((t.price, t.share) for t in pb.targets),
            rr_ratio=risk.rr_ratio if risk else None,
            max_risk=risk.max_risk if risk else None,
            invalidation=pb.invalidation,
            rationale=pb.rationale,
            levels_used=tuple(pb.levels_used),
            level_prices=tuple(levels[name] for name in pb.levels_used),
        )

    def as_row(self) -> dict:
        """The record as a dict in the dataset's column order (targets as price/share dicts)."""
        row = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict deep-copies
        row["targets"] = [{"price": p, "share": s} for p, s in self.targets]
        row["levels_used"] = list(self.levels_used)
        row["level_prices"] = list(self.level_prices)
        row["raw_answers"] = list(self.raw_answers)
        return row

    def summary(self) -> dict:
        """A short row for tables and artifacts: the plan, not the payload or raw answers."""
        return {
            "exchange": self.exchange,
            "market": self.market,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "as_of": ms_to_iso(self.as_of),
            "source": self.source,
            "status": self.status,
            "cached": self.cached,
            "bias": self.bias,
            "confidence": self.confidence,
            "entry": None
            if self.entry_low is None
            else f"{self.entry_low:.8g}-{self.entry_high:.8g}",
            "stop_loss": self.stop_loss,
            "targets": " ".join(f"{p:.8g}" for p, _ in self.targets) or None,
            "rr_ratio": self.rr_ratio,
            "valid_until": ms_to_iso(self.valid_until),
            "tokens": self.tokens_in + self.tokens_out,
            "error": self.error,
        }
