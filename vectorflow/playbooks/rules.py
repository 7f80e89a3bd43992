"""Rule-based playbooks from the same inputs, when no key is set or the Grok breaker is open.

The rules (RULES_VERSION), with c the last close and a the ATR; shorts mirror longs:

- Direction only in a trend the numbers show: ADX ≥ ADX_MIN (25) and a DI spread
  |+DI − −DI| ≥ DI_SPREAD_MIN (5 points); long when +DI is above −DI, short when below.
  Otherwise `no_trade`, naming the threshold that was missed.
- Entry, a limit buy on a pullback: the support is the highest level of the data between
  c − 1.5a and c − 0.1a (value-area edges, POCs, initial balance, prior day, 20-bar range, the
  last trap level, the higher timeframe's levels); zone [S, S + 0.25a] (below c − 0.05a).
  Without such a level: zone [c − 0.5a, c − 0.1a].
- Stop 0.5a under the zone. With m the middle of the zone and R = m − stop: first target the
  lowest level of the data between m + 1.5R and m + 3R, else m + 2R; second target m + 3R (at
  least 1R past the first), dropped when more than 4.5a from c (the first then takes it all).
- Invalidation, a close-based condition distinct from the stop: a close back below the support
  (`a 1h close below VAL 59,950.00`), or without a level, below the zone with −DI back above +DI.
- Confidence 50; +10 with ADX ≥ 35; ±10 when the higher timeframe trends with / against the
  trade; ±5 when the OI quadrant confirms (long: long build-up; short: short build-up) / opposes
  (the other build-up); ±5 when the order-book imbalance within 50 bps is ≥ 0.2 with / against
  the trade; +5 when the last trap points the same way (a bear trap or a sweep of lows for a
  long); −10 in high
  volatility; kept within [5, 95]. `no_trade`: 60 when ADX < 20 (a range), else 50.
- Risk 1 % of equity (0.5 % in high volatility). Prices are rounded to the market's tick (the
  stop away from the entry), and the reward-to-risk is computed from the rounded prices.

The rationale states the conditions the plan came from (regime with ADX and DI spread, where
price sits against the value area, the last trap, the OI quadrant, the book imbalance, the
higher timeframe). The result passes the same validation as Grok's answers; if it ever did not,
it becomes no_trade.
"""

from __future__ import annotations

from vectorflow.errors import PlaybookRejected
from vectorflow.playbooks.contract import Entry, Playbook, Risk, Target
from vectorflow.playbooks.inputs import PlaybookInputs
from vectorflow.playbooks.rules_text import conditions, level_label, price_text
from vectorflow.playbooks.ticks import to_tick
from vectorflow.playbooks.validate import MarketFrame, check_playbook

RULES_VERSION = "rules-v2"
ADX_MIN = 25.0
DI_SPREAD_MIN = 5.0
STRONG_ADX = 35.0
RANGE_ADX = 20.0
IMBALANCE_MIN = 0.2
MAX_TARGET_ATR = 4.5
BULLISH_TRAPS = ("bear_trap", "sweep_low")  # failed breaks of a low point up
BEARISH_TRAPS = ("bull_trap", "sweep_high")


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def trend_side(inputs: PlaybookInputs) -> tuple[str | None, str]:
    """("long" | "short" | None, why): the direction the ADX and DI spread allow, if any."""
    s = inputs.signals
    adx, plus, minus = _number(s.get("adx")), _number(s.get("plus_di")), _number(s.get("minus_di"))
    if adx is None or plus is None or minus is None:
        return None, "no ADX / DI figures at as_of: no trend to trade"
    spread = plus - minus
    if adx < ADX_MIN:
        return None, f"ADX {adx:.1f} is below {ADX_MIN:g}: no trend to trade"
    if abs(spread) < DI_SPREAD_MIN:
        return None, (
            f"+DI {plus:.1f} against -DI {minus:.1f}: a spread of {abs(spread):.1f} is below "
            f"{DI_SPREAD_MIN:g}, no clear direction"
        )
    return ("long" if spread > 0 else "short"), ""


def _support(inputs: PlaybookInputs, sign: int) -> tuple[str, float] | None:
    """The level nearest the close on the pullback side, 0.1 to 1.5 ATR away (None: none)."""
    c, a = inputs.last_close, inputs.atr
    near = [
        (name, price)
        for name, price in inputs.citable_levels().items()
        if 0.1 * a <= sign * (c - price) <= 1.5 * a
    ]
    return min(near, key=lambda item: abs(c - item[1]), default=None)


def _target_level(inputs: PlaybookInputs, sign: int, low: float, high: float):
    """The citable level nearest the entry within [low, high] past it (None: none)."""
    levels = [(n, p) for n, p in inputs.citable_levels().items() if low <= sign * p <= high]
    return min(levels, key=lambda item: sign * item[1], default=None)


def _confidence(inputs: PlaybookInputs, side: str) -> int:
    sign, s = (1 if side == "long" else -1), inputs.signals
    score = 50 + (10 if (_number(s.get("adx")) or 0) >= STRONG_ADX else 0)
    higher = str(inputs.section("higher_timeframe").get("regime") or "")
    if higher.startswith("trend_"):
        score += 10 if higher.startswith("trend_up" if sign > 0 else "trend_down") else -10
    quadrant = str(inputs.section("derivatives").get("oi_quadrant") or "")
    if quadrant in ("long_build_up", "short_build_up"):
        score += 5 if quadrant == ("long_build_up" if sign > 0 else "short_build_up") else -5
    imbalance = _number(inputs.section("order_book").get("imbalance_50bps"))
    if imbalance is not None and abs(imbalance) >= IMBALANCE_MIN:
        score += 5 if imbalance * sign > 0 else -5
    if str(s.get("last_trap_type") or "") in (BULLISH_TRAPS if sign > 0 else BEARISH_TRAPS):
        score += 5
    if str(s.get("regime") or "").endswith("high_vol"):
        score -= 10
    return max(5, min(95, score))


def _no_trade(inputs: PlaybookInputs, reason: str) -> Playbook:
    adx = _number(inputs.signals.get("adx"))
    tf = inputs.unit.timeframe
    return Playbook(
        bias="no_trade",
        confidence=60 if adx is not None and adx < RANGE_ADX else 50,
        entry=None,
        stop_loss=None,
        targets=[],
        invalidation=f"a trend forming on the {tf}: ADX above {ADX_MIN:g} with a DI spread "
        f"above {DI_SPREAD_MIN:g}",
        risk=None,
        rationale=_text(inputs, f"No trade: {reason}."),
        levels_used=[],
    )


def _text(inputs: PlaybookInputs, decision: str) -> str:
    return " ".join([*conditions(inputs), decision])[:800]


def _zone(inputs: PlaybookInputs, sign: int) -> tuple[float, float, tuple[str, float] | None]:
    c, a = inputs.last_close, inputs.atr
    support = _support(inputs, sign)
    if support is None:
        near, far = c - sign * 0.1 * a, c - sign * 0.5 * a
    else:
        near = support[1] + sign * min(0.25 * a, sign * (c - support[1]) - 0.05 * a)
        far = support[1]
    return min(near, far), max(near, far), support


def _invalidation(inputs: PlaybookInputs, sign: int, support, edge: float) -> str:
    """A close-based condition that voids the idea before the stop is hit."""
    tf, word, tick = inputs.unit.timeframe, "below" if sign > 0 else "above", inputs.tick_size
    if support is not None:
        return f"a {tf} close {word} {level_label(support[0])} {price_text(support[1], tick)}"
    other = "-DI above +DI" if sign > 0 else "+DI above -DI"
    return f"a {tf} close {word} {price_text(edge, tick)} with {other}"


def _decision(inputs: PlaybookInputs, sign: int, support, level, prices: tuple) -> str:
    low, high, stop, first = (price_text(p, inputs.tick_size) for p in prices)
    if support is not None:
        anchor = f"to {level_label(support[0])} {price_text(support[1], inputs.tick_size)}"
    else:
        anchor = "of 0.1-0.5 ATR"
    named = f" ({level_label(level[0])})" if level else ""
    action = "Buy a pullback" if sign > 0 else "Sell a bounce"
    return f"{action} {anchor}: limit {low}-{high}, stop {stop}, target {first}{named}."


def _plan(inputs: PlaybookInputs, side: str) -> Playbook:
    """The pullback plan of `side`, prices on the tick grid."""
    sign, c, a = (1 if side == "long" else -1), inputs.last_close, inputs.atr
    tick = inputs.tick_size
    low, high, support = _zone(inputs, sign)
    low, high = to_tick(low, tick), to_tick(high, tick)
    edge = low if sign > 0 else high
    stop = to_tick(edge - sign * 0.5 * a, tick, "down" if sign > 0 else "up")
    middle = (low + high) / 2
    risk = abs(middle - stop)
    level = _target_level(inputs, sign, sign * middle + 1.5 * risk, sign * middle + 3 * risk)
    first = to_tick(level[1] if level else middle + sign * 2 * risk, tick)
    second = to_tick(sign * max(sign * middle + 3 * risk, sign * first + risk), tick)
    targets = [Target(price=first, share=1.0)]
    if abs(second - c) <= MAX_TARGET_ATR * a:
        targets = [Target(price=first, share=0.5), Target(price=second, share=0.5)]
    zone = f"{price_text(low, tick)}-{price_text(high, tick)}"
    high_vol = str(inputs.signals.get("regime") or "").endswith("high_vol")
    return Playbook(
        bias=side,
        confidence=_confidence(inputs, side),
        entry=Entry(type="limit", zone_low=low, zone_high=high, trigger=f"a fill in {zone}"),
        stop_loss=stop,
        targets=targets,
        invalidation=_invalidation(inputs, sign, support, edge),
        risk=Risk(
            max_risk=0.005 if high_vol else 0.01,
            rr_ratio=round(abs(first - middle) / abs(middle - stop), 4),
        ),
        rationale=_text(inputs, _decision(inputs, sign, support, level, (low, high, stop, first))),
        levels_used=[item[0] for item in (support, level) if item is not None],
    )


def rules_playbook(inputs: PlaybookInputs, *, max_atr_distance: float = 5.0) -> Playbook:
    """The rule-based playbook of `inputs` (which must not be stale)."""
    if not inputs.atr > 0:
        return _no_trade(inputs, "no price range to size a stop (ATR is zero)")
    side, why = trend_side(inputs)
    if side is None:
        return _no_trade(inputs, why)
    playbook = _plan(inputs, side)
    frame = MarketFrame(inputs.last_close, inputs.atr, inputs.citable_levels())
    try:
        check_playbook(playbook, frame, max_atr_distance=max_atr_distance)
    except PlaybookRejected as exc:
        return _no_trade(inputs, f"the rule's own plan failed validation ({exc})")
    return playbook
