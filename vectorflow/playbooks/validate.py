"""Checks by code, after parsing: what a schema cannot promise about a playbook.

Error messages name fields and numbers we computed, never the model's own text, so a repair
request quoting them cannot carry an injected instruction back to the model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from pydantic import ValidationError

from vectorflow.errors import PlaybookRejected
from vectorflow.playbooks.contract import Playbook

RR_TOLERANCE = 0.10  # stated reward-to-risk within ±10 % of the computed one
SHARE_TOLERANCE = 0.01  # target shares sum to 1 within this


@dataclass(frozen=True)
class MarketFrame:
    """What validation compares a playbook with: the last close, the ATR, the levels offered."""

    last_close: float
    atr: float
    levels: dict[str, float] = field(default_factory=dict)


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def parse_answer(text: str | None) -> Playbook:
    """The answer parsed against the contract; PlaybookRejected says where it broke."""
    if not text or not text.strip():
        raise PlaybookRejected("the answer is empty; expected one JSON object")
    try:
        json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise PlaybookRejected(f"the answer is not JSON ({exc.msg} at char {exc.pos})") from None
    try:
        return Playbook.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)[:8]
        )
        raise PlaybookRejected(f"the answer breaks the schema: {problems}") from None


def _check_no_trade(pb: Playbook) -> None:
    carried = [
        name
        for name, value in (
            ("entry", pb.entry),
            ("stop_loss", pb.stop_loss),
            ("targets", pb.targets or None),
            ("risk", pb.risk),
        )
        if value is not None
    ]
    if carried:
        raise PlaybookRejected(f"bias no_trade must carry no levels, but has {', '.join(carried)}")


def _order_pairs(pb: Playbook) -> list[tuple[str, float, str, str, float]]:
    """(name, value, relation, name, value) pairs that must hold, for the playbook's side."""
    entry, stop = pb.entry, pb.stop_loss
    targets = [(f"targets[{i}].price", t.price) for i, t in enumerate(pb.targets)]
    pairs = [("entry.zone_low", entry.zone_low, "<=", "entry.zone_high", entry.zone_high)]
    if pb.bias == "long":
        chain = [("stop_loss", stop), ("entry.zone_low", entry.zone_low)]
        chain += [("entry.zone_high", entry.zone_high), *targets]
    else:
        chain = [*targets[::-1], ("entry.zone_low", entry.zone_low)]
        chain += [("entry.zone_high", entry.zone_high), ("stop_loss", stop)]
    for (low_name, low), (high_name, high) in zip(chain[:-1], chain[1:], strict=True):
        if {low_name, high_name} != {"entry.zone_low", "entry.zone_high"}:
            pairs.append((low_name, low, "<", high_name, high))
    return pairs


def _check_order(pb: Playbook) -> None:
    for low_name, low, relation, high_name, high in _order_pairs(pb):
        if not (low <= high if relation == "<=" else low < high):
            raise PlaybookRejected(
                f"levels out of order for a {pb.bias}: expected {low_name} ({_fmt(low)}) "
                f"{relation} {high_name} ({_fmt(high)})"
            )


def computed_rr(pb: Playbook) -> float:
    """Reward-to-risk from the middle of the entry zone to the first target."""
    middle = (pb.entry.zone_low + pb.entry.zone_high) / 2
    return abs(pb.targets[0].price - middle) / abs(middle - pb.stop_loss)


def _check_numbers(pb: Playbook, frame: MarketFrame, max_atr_distance: float) -> None:
    rr = computed_rr(pb)
    if abs(pb.risk.rr_ratio - rr) > RR_TOLERANCE * rr:
        raise PlaybookRejected(
            f"risk.rr_ratio {_fmt(pb.risk.rr_ratio)} disagrees with {rr:.3f} computed from the "
            f"middle of the entry zone to targets[0] (more than {RR_TOLERANCE:.0%} apart)"
        )
    total = math.fsum(t.share for t in pb.targets)
    if abs(total - 1) > SHARE_TOLERANCE:
        raise PlaybookRejected(f"target shares sum to {total:.4f}, not 1")
    limit = max_atr_distance * frame.atr
    prices = {
        "stop_loss": pb.stop_loss,
        "entry.zone_low": pb.entry.zone_low,
        "entry.zone_high": pb.entry.zone_high,
        **{f"targets[{i}].price": t.price for i, t in enumerate(pb.targets)},
    }
    for name, price in prices.items():
        if abs(price - frame.last_close) > limit:
            raise PlaybookRejected(
                f"{name} {_fmt(price)} is more than {max_atr_distance:g} ATR "
                f"({_fmt(limit)}) from the last close {_fmt(frame.last_close)}"
            )


def check_playbook(pb: Playbook, frame: MarketFrame, *, max_atr_distance: float = 5.0) -> None:
    """Raise PlaybookRejected when `pb` breaks a rule of the contract."""
    unknown = [name for name in pb.levels_used if name not in frame.levels]
    if unknown:
        raise PlaybookRejected(f"levels_used names levels not in the data: {', '.join(unknown)}")
    if pb.bias == "no_trade":
        _check_no_trade(pb)
        return
    missing = [
        name
        for name, value in (("entry", pb.entry), ("stop_loss", pb.stop_loss), ("risk", pb.risk))
        if value is None
    ]
    if missing or not pb.targets:
        missing += [] if pb.targets else ["targets"]
        raise PlaybookRejected(f"a {pb.bias} playbook needs {', '.join(missing)}")
    _check_order(pb)
    _check_numbers(pb, frame, max_atr_distance)


def validate_answer(text: str | None, frame: MarketFrame, *, max_atr_distance: float) -> Playbook:
    """Parse and check one answer; PlaybookRejected names the first broken rule."""
    playbook = parse_answer(text)
    check_playbook(playbook, frame, max_atr_distance=max_atr_distance)
    return playbook
