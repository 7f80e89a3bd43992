"""The rule-based writer's words: the conditions a plan came from, with the numbers behind them."""

from __future__ import annotations

from vectorflow.playbooks.inputs import HTF_PREFIX, PlaybookInputs
from vectorflow.playbooks.ticks import format_price

LABELS = {
    "tpo_poc": "POC",
    "tpo_vah": "VAH",
    "tpo_val": "VAL",
    "tpo_ib_high": "IB high",
    "tpo_ib_low": "IB low",
    "vp_poc": "volume POC",
    "vp_vah": "volume VAH",
    "vp_val": "volume VAL",
    "prior_day_high": "prior-day high",
    "prior_day_low": "prior-day low",
    "range_high_20": "20-bar high",
    "range_low_20": "20-bar low",
    "trap_level": "trap level",
}


def level_label(name: str) -> str:
    """A level's name as a trader reads it: tpo_vah → VAH, htf_range_high_20 → HTF 20-bar high."""
    if name.startswith(HTF_PREFIX):
        return f"HTF {LABELS.get(name[len(HTF_PREFIX):], name)}"
    return LABELS.get(name, name)


def price_text(price: float, tick: float | None) -> str:
    """A price with the tick's decimals."""
    return format_price(price, tick)


def _regime(inputs: PlaybookInputs) -> str:
    s = inputs.signals
    adx, plus, minus = s.get("adx"), s.get("plus_di"), s.get("minus_di")
    if not all(isinstance(v, (int, float)) for v in (adx, plus, minus)):
        return f"Regime {s.get('regime') or 'unknown'}, no ADX / DI figures."
    return (
        f"Regime {s.get('regime') or 'unknown'}: ADX {adx:.1f}, +DI {plus:.1f} vs -DI "
        f"{minus:.1f} (spread {plus - minus:+.1f})."
    )


def _value_area(inputs: PlaybookInputs) -> str:
    levels, c, tick = inputs.levels, inputs.last_close, inputs.tick_size
    price = f"Price {price_text(c, tick)}"
    vah, val = levels.get("tpo_vah"), levels.get("tpo_val")
    if vah is None and val is None:
        high, low = levels.get("range_high_20"), levels.get("range_low_20")
        if high is None or low is None:
            return f"{price}."
        return f"{price} in the 20-bar range {price_text(low, tick)}-{price_text(high, tick)}."
    if vah is not None and c > vah:
        where = f"above VAH {price_text(vah, tick)}"
    elif val is not None and c < val:
        where = f"below VAL {price_text(val, tick)}"
    elif vah is not None and val is not None:
        where = f"inside value {price_text(val, tick)}-{price_text(vah, tick)}"
    else:
        where = f"{'under VAH' if vah is not None else 'over VAL'} {price_text(vah or val, tick)}"
    poc = levels.get("tpo_poc")
    return f"{price} is {where}" + (f" (POC {price_text(poc, tick)})." if poc else ".")


def _trap(inputs: PlaybookInputs) -> str | None:
    kind, level = inputs.signals.get("last_trap_type"), inputs.signals.get("last_trap_level")
    if not kind or not isinstance(level, (int, float)):
        return None
    return f"Last trap: {str(kind).replace('_', ' ')} at {price_text(level, inputs.tick_size)}."


def _derivatives(inputs: PlaybookInputs) -> str | None:
    d = inputs.section("derivatives")
    if "unavailable" in d or not d.get("oi_quadrant"):
        return None
    parts = [f"OI {str(d['oi_quadrant']).replace('_', ' ')}"]
    if isinstance(d.get("oi_change"), float):
        parts.append(f"({d['oi_change']:+.2%} over the bar)")
    text = " ".join(parts)
    if isinstance(d.get("funding_annualized"), float):
        text += f", funding {d['funding_annualized']:+.1%} a year"
    return text + "."


def _book(inputs: PlaybookInputs) -> str | None:
    b = inputs.section("order_book")
    imbalance, spread = b.get("imbalance_50bps"), b.get("spread_bps")
    if "unavailable" in b or not isinstance(imbalance, float):
        return None
    tail = f", spread {spread:.1f} bps" if isinstance(spread, float) else ""
    return f"Book imbalance {imbalance:+.2f} within 50 bps{tail}."


def _higher(inputs: PlaybookInputs) -> str | None:
    h = inputs.section("higher_timeframe")
    if "unavailable" in h or not h.get("regime"):
        return None
    adx = h.get("adx")
    return f"{h['timeframe']} regime {h['regime']}" + (
        f" (ADX {adx:.1f})." if isinstance(adx, float) else "."
    )


def conditions(inputs: PlaybookInputs) -> list[str]:
    """Sentences stating the conditions at as_of, from the numbers the plan used."""
    found = [
        _regime(inputs),
        _value_area(inputs),
        _trap(inputs),
        _derivatives(inputs),
        _book(inputs),
        _higher(inputs),
    ]
    return [text for text in found if text]
