"""Rule-based playbooks from the same inputs, when no key is set or the Grok breaker is open.

The rules (RULES_VERSION), with c the last close and a the ATR:

- `trend_up` regime: buy a pullback, limit zone [c − 0.5a, c − 0.1a], stop 1a under the zone,
  targets c + 1a and c + 2a (half each). `trend_down`: the mirror image (short).
- Otherwise (range, unknown or too little history): fade the edges of value. Above the value
  area high (or in the top fifth of the 20-bar range without a profile): short, zone
  [c, c + 0.3a], stop 1a over the zone, first target the POC (or the range middle) but at least
  0.5a past the zone, second target 1a further. Below value: the mirror image. Inside: no_trade.
- Confidence 50, +10 with ADX ≥ 30 in a trend, +10 when the latest trap points the same way,
  −10 in high volatility; risk 1 % of equity (0.5 % in high volatility).

The result passes the same validation as Grok's answers; if it ever did not, it becomes no_trade.
"""

from __future__ import annotations

from vectorflow.errors import PlaybookRejected
from vectorflow.playbooks.contract import Entry, Playbook, Risk, Target
from vectorflow.playbooks.inputs import PlaybookInputs
from vectorflow.playbooks.validate import MarketFrame, check_playbook

RULES_VERSION = "rules-v1"


def _no_trade(reason: str, levels: list[str]) -> Playbook:
    return Playbook(
        bias="no_trade",
        confidence=50,
        entry=None,
        stop_loss=None,
        targets=[],
        invalidation="a move outside the value area or a new regime",
        risk=None,
        rationale=f"Rule-based ({RULES_VERSION}): {reason}.",
        levels_used=levels,
    )


def _confidence(inputs: PlaybookInputs, side: str) -> int:
    signals = inputs.signals
    regime = str(signals.get("regime") or "")
    score = 50
    adx = signals.get("adx")
    if regime.startswith("trend") and isinstance(adx, (int, float)) and adx >= 30:
        score += 10
    trap = str(signals.get("last_trap_type") or "")
    if (side == "short" and "bull" in trap) or (side == "long" and "bear" in trap):
        score += 10
    if regime.endswith("high_vol"):
        score -= 10
    return max(0, min(100, score))


def _plan(
    inputs: PlaybookInputs,
    side: str,
    zone: tuple[float, float],
    goal: float,
    why: str,
    levels_used: list[str],
) -> Playbook:
    """`side` from the zone, stop 1 ATR past it, targets at `goal` (≥ 0.5 ATR out) and 1 ATR on."""
    a, sign = inputs.atr, 1 if side == "long" else -1
    low, high = zone
    stop = low - a if side == "long" else high + a
    edge = high if side == "long" else low
    first = goal if sign * (goal - edge) >= 0.5 * a else edge + sign * 0.5 * a
    second = first + sign * a
    middle = (low + high) / 2
    rr = abs(first - middle) / abs(middle - stop)
    high_vol = str(inputs.signals.get("regime") or "").endswith("high_vol")
    return Playbook(
        bias=side,
        confidence=_confidence(inputs, side),
        entry=Entry(type="limit", zone_low=low, zone_high=high, trigger=why),
        stop_loss=stop,
        targets=[Target(price=first, share=0.5), Target(price=second, share=0.5)],
        invalidation=f"a close beyond the stop at {stop:.8g}",
        risk=Risk(max_risk=0.005 if high_vol else 0.01, rr_ratio=round(rr, 4)),
        rationale=f"Rule-based ({RULES_VERSION}): {why}.",
        levels_used=levels_used,
    )


def _trend(inputs: PlaybookInputs, regime: str) -> Playbook:
    c, a = inputs.last_close, inputs.atr
    if regime.startswith("trend_up"):
        return _plan(
            inputs, "long", (c - 0.5 * a, c - 0.1 * a), c + a, "trend_up: buy a pullback", []
        )
    return _plan(
        inputs, "short", (c + 0.1 * a, c + 0.5 * a), c - a, "trend_down: sell a bounce", []
    )


def _value_edges(inputs: PlaybookInputs) -> tuple[float, float, float, list[str]]:
    """(upper, lower, middle, level names): the value area, or the 20-bar range without one."""
    levels = inputs.levels
    if "tpo_vah" in levels and "tpo_val" in levels:
        upper, lower = levels["tpo_vah"], levels["tpo_val"]
        names = ["tpo_vah", "tpo_val"] + (["tpo_poc"] if "tpo_poc" in levels else [])
        return upper, lower, levels.get("tpo_poc", (upper + lower) / 2), names
    high, low = levels["range_high_20"], levels["range_low_20"]
    fifth = 0.2 * (high - low)
    return high - fifth, low + fifth, (high + low) / 2, ["range_high_20", "range_low_20"]


def _fade(inputs: PlaybookInputs) -> Playbook:
    c, a = inputs.last_close, inputs.atr
    upper, lower, middle, names = _value_edges(inputs)
    if c > upper:
        return _plan(
            inputs, "short", (c, c + 0.3 * a), middle, "above value: fade toward the middle", names
        )
    if c < lower:
        return _plan(
            inputs, "long", (c - 0.3 * a, c), middle, "below value: fade toward the middle", names
        )
    return _no_trade("price inside value with no trend: no edge", names)


def rules_playbook(inputs: PlaybookInputs, *, max_atr_distance: float = 5.0) -> Playbook:
    """The rule-based playbook of `inputs` (which must not be stale)."""
    regime = str(inputs.signals.get("regime") or "")
    if not inputs.atr > 0:
        return _no_trade("no price range to size a stop (ATR is zero)", [])
    playbook = _trend(inputs, regime) if regime.startswith("trend_") else _fade(inputs)
    frame = MarketFrame(inputs.last_close, inputs.atr, inputs.levels)
    try:
        check_playbook(playbook, frame, max_atr_distance=max_atr_distance)
    except PlaybookRejected as exc:
        return _no_trade(f"the rule's own plan failed validation ({exc})", [])
    return playbook
