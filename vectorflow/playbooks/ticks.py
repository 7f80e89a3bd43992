"""Price ticks: a playbook's prices are multiples of the market's tick size.

The tick comes from the exchange's market (ccxt `market["precision"]["price"]`, a tick size for
Binance and Bybit, whose ccxt precision mode is TICK_SIZE), looked up by the flow from the
markets the ingest cached. Without it (no markets cached, a replay offline) the tick is inferred
from the stored prices: the coarsest power of ten of which every recent open, high, low and close
is a multiple (BTC/USDT at 60,123.45 → 0.01). Prices are kept exact by working in integer ticks.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

MIN_TICK = 1e-8  # the finest price step either exchange quotes


def market_label(unit) -> str:
    """`binance spot BTC/USDT`: the market a series' tick size belongs to."""
    return f"{unit.exchange} {unit.market} {unit.symbol}"


def infer_tick(prices: np.ndarray) -> float:
    """The coarsest power of ten (≤ 1, ≥ 1e-8) that every finite price is a multiple of."""
    values = np.abs(prices[np.isfinite(prices)])
    if len(values) == 0:
        return MIN_TICK
    for exponent in range(0, -9, -1):
        scaled = values * 10.0 ** (-exponent)
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6):  # float noise is far below
            return float(Decimal(1).scaleb(exponent))
    return MIN_TICK


def tick_of_market(market: dict) -> float | None:
    """The price tick of a ccxt market (precision mode TICK_SIZE), None when it has none."""
    value = (market.get("precision") or {}).get("price")
    if value is None:
        value = ((market.get("limits") or {}).get("price") or {}).get("min")
    try:
        tick = float(value)
    except (TypeError, ValueError):
        return None
    return tick if math.isfinite(tick) and tick > 0 else None


def _decimals(tick: float) -> int:
    return max(0, -Decimal(repr(tick)).normalize().as_tuple().exponent)


def to_tick(price: float, tick: float | None, mode: str = "nearest") -> float:
    """`price` on the tick grid (`nearest`, `down` or `up`), as the float of its decimal value.

    Without a tick the price is returned as it is.
    """
    if not tick:
        return price
    ticks = price / tick
    whole = {"nearest": round, "down": math.floor, "up": math.ceil}[mode](ticks + 0.0)
    if mode != "nearest" and abs(ticks - round(ticks)) < 1e-9:
        whole = round(ticks)  # already on the grid: float noise must not move it a tick
    return round(whole * tick, _decimals(tick))


def is_multiple(price: float, tick: float) -> bool:
    """True when `price` is a whole number of ticks (up to float representation)."""
    ticks = price / tick
    return abs(ticks - round(ticks)) < 1e-6


def format_price(price: float, tick: float | None) -> str:
    """A price with thousands separators and the tick's decimals (`22,920.5`)."""
    if tick is None:
        return f"{price:,.8g}"
    return f"{price:,.{_decimals(tick)}f}"
