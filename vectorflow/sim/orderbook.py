"""Order books of the simulator: a seeded book around each venue's candle price, new each second.

Binance spot `GET /api/v3/depth`, USDⓈ-M `GET /fapi/v1/depth` (with `E` and `T`), Bybit
`GET /v5/market/orderbook` (with `ts`, `u`, `seq`, `cts`), in the shapes of
data/examples/*_depth.json and bybit_orderbook.json, with the documented limits and weights.
The book is a deterministic function of (seed, venue, symbol, second): asking twice within a
second gives the same book, a second later it has moved with the candles.
"""

from __future__ import annotations

import numpy as np

from vectorflow.sim import binance, bybit, synth
from vectorflow.sim.series import History, Series
from vectorflow.sim.synth import MIN_MS

Reply = tuple[int, object, int]

SPOT_DEFAULT, SPOT_MAX = 100, 5000
USDM_LIMITS, USDM_DEFAULT = (5, 10, 20, 50, 100, 500, 1000), 500
BYBIT_MAX = 1000
BYBIT_DEFAULT = {"spot": 1, "linear": 25}
LEVEL_USD = 4000.0  # typical quote value resting at one BTC level; others scale by notional


def spot_depth_weight(limit: int) -> int:
    """Weight of GET /api/v3/depth."""
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def usdm_depth_weight(limit: int) -> int:
    """Weight of GET /fapi/v1/depth."""
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def price_ticks_at(series: Series, now: int) -> int:
    """The venue's last traded price at `now` in ticks (the open candle's current close)."""
    series.ensure(now + MIN_MS)
    start = max(now // MIN_MS * MIN_MS, series.t0)
    return int(series.partial(start, now)["c"])


def close_ticks_before(series: Series, times: np.ndarray) -> np.ndarray:
    """Close (ticks) of the 1m candle that ended at or just before each time."""
    series.ensure(int(times.max()) + MIN_MS)
    idx = np.clip((times - series.t0) // MIN_MS - 1, 0, series.size - 1)
    return series.base["c"][idx]


def book(history: History, series: Series, now: int, depth: int) -> tuple[list, list]:
    """`depth` bid and ask levels [(price, amount), ...] as floats, best first."""
    with history.lock:
        mid = price_ticks_at(series, now)
    venue, spec = series.venue, series.spec
    rng = synth.rng_for(history.seed, *venue, spec.id, "book", now // 1000)
    spread = 1 + int(rng.geometric(0.55)) - 1 + (1 if mid > 20_000 else 0)
    best_bid = max(mid - spread // 2, depth + 2)
    best_ask = best_bid + max(spread, 1)
    sides = []
    for best, sign in ((best_bid, -1), (best_ask, 1)):
        gaps = np.r_[0, rng.geometric(0.6, size=depth - 1)]
        ticks = best + sign * np.cumsum(gaps)
        price = ticks * series.tick
        usd = LEVEL_USD * spec.notional * rng.lognormal(0.0, 0.9, size=depth)
        steps = np.maximum(np.rint(usd / price / series.step), 1)
        sides.append(list(zip(price.tolist(), (steps * series.step).tolist(), strict=True)))
    keep = [(p, q) for p, q in sides[0] if p > 0]
    return keep, sides[1]


def _levels(levels: list, price_dp: int, qty_dp: int) -> list[list[str]]:
    return [[f"{p:.{price_dp}f}", f"{q:.{qty_dp}f}"] for p, q in levels]


def _limit(params: dict[str, str], default: int) -> int | None:
    text = params.get("limit")
    if text in (None, ""):
        return default
    return int(text) if text.isdigit() else None


def binance_depth(history: History, params: dict[str, str], now: int, *, market: str) -> Reply:
    """GET /api/v3/depth (spot) and GET /fapi/v1/depth (linear)."""
    spot = market == "spot"
    limit = _limit(params, SPOT_DEFAULT if spot else USDM_DEFAULT)
    weight = spot_depth_weight(limit or 0) if spot else usdm_depth_weight(limit or 0)
    valid = limit is not None and (1 <= limit <= SPOT_MAX if spot else limit in USDM_LIMITS)
    if not valid:
        return binance.error(-1130, "Data sent for parameter 'limit' is not valid.", weight)
    symbol = params.get("symbol", "").upper()
    if not symbol:
        return binance.error(-1102, "Mandatory parameter 'symbol' was not sent.", weight)
    series = history.series("binance", market, symbol)
    if series is None or now < series.t0:
        return binance.error(-1121, "Invalid symbol.", weight)
    bids, asks = book(history, series, now, limit)
    grid = series.spec.grids[series.venue]
    body = {"lastUpdateId": now // 7}
    if not spot:
        jitter = int(synth.rng_for(history.seed, symbol, "T", now).integers(2, 30))
        body |= {"E": now, "T": now - jitter}
    body |= {
        "bids": _levels(bids, 8 if spot else grid.price_decimals, 8 if spot else grid.qty_decimals),
        "asks": _levels(asks, 8 if spot else grid.price_decimals, 8 if spot else grid.qty_decimals),
    }
    return 200, body, weight


def bybit_orderbook(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /v5/market/orderbook for spot and linear."""
    category = params.get("category")
    if category not in ("spot", "linear"):
        return bybit.error(
            now, "params error: category invalid" if category else "Illegal category"
        )
    limit = _limit(params, BYBIT_DEFAULT[category])
    if limit is None or not 1 <= limit <= BYBIT_MAX:
        return bybit.error(now, "params error: limit invalid")
    symbol = params.get("symbol", "").upper()
    series = history.series("bybit", category, symbol)
    if series is None or now < series.t0:
        return bybit.error(now, "params error: Symbol Is Invalid", 10001)
    bids, asks = book(history, series, now, limit)
    grid = series.spec.grids[series.venue]
    ts = now - int(synth.rng_for(history.seed, symbol, "ts", now).integers(1, 15))
    result = {
        "s": symbol,
        "a": _levels(asks, grid.price_decimals, grid.qty_decimals),
        "b": _levels(bids, grid.price_decimals, grid.qty_decimals),
        "ts": ts,
        "u": now // 20 % 100_000_000,
        "seq": now // 3,
        "cts": ts - 120,
    }
    return 200, bybit.envelope(result, now), 1


BINANCE_ROUTES = {
    "/api/v3/depth": lambda h, p, n: binance_depth(h, p, n, market="spot"),
    "/fapi/v1/depth": lambda h, p, n: binance_depth(h, p, n, market="linear"),
}
BYBIT_ROUTES = {"/v5/market/orderbook": bybit_orderbook}
