"""Open interest and funding of the simulator's perpetuals, in the exchanges' real shapes.

Binance openInterestHist / openInterest / fundingRate / fundingInfo and Bybit open-interest /
funding/history, with their limits, orders and paging. Values are smooth deterministic
functions of time. What users see: docs/exchanges.md#the-simulator.
"""

from __future__ import annotations

import zlib
from urllib.parse import parse_qs, quote, unquote

import numpy as np

from vectorflow.sim import binance, bybit
from vectorflow.sim.orderbook import close_ticks_before, price_ticks_at
from vectorflow.sim.series import History, Series
from vectorflow.sim.synth import DAY_MS
from vectorflow.timeframes import TIMEFRAMES, timeframe_ms

Reply = tuple[int, object, int]
HOUR = 3_600_000
OI_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
BYBIT_OI_INTERVALS = {
    "5min": "5m",
    "15min": "15m",
    "30min": "30m",
    "1h": "1h",
    "4h": "4h",
    "1d": "1d",
}
BINANCE_OI_HORIZON_MS = 30 * DAY_MS
FOUR_HOURLY = {"NEWUSDT"}  # 4 h from the listing
CHANGES_INTERVAL = "SOLUSDT"  # 8 h, then 4 h from `interval_change`


def interval_change(history: History) -> int:
    """When SOLUSDT's funding interval went from 8 h to 4 h: seven days before the start."""
    return (history.anchor_ms - 7 * DAY_MS) // DAY_MS * DAY_MS


def current_interval_hours(symbol_id: str) -> int:
    """The funding interval a symbol has now (what fundingInfo / instruments-info report)."""
    return 4 if symbol_id in FOUR_HOURLY or symbol_id == CHANGES_INTERVAL else 8


def funding_times(history: History, symbol_id: str, lo: int, hi: int) -> np.ndarray:
    """Funding times of a symbol in [lo, hi], ascending, none before its listing."""
    lo = max(lo, history.listing[symbol_id] + 1)
    if symbol_id in FOUR_HOURLY:
        return _times(lo, hi, 4 * HOUR)
    if symbol_id == CHANGES_INTERVAL:
        change = interval_change(history)  # a day boundary: the last 8 h funding is at it
        return np.concatenate(
            [_times(lo, min(hi, change), 8 * HOUR), _times(max(lo, change + 1), hi, 4 * HOUR)]
        )
    return _times(lo, hi, 8 * HOUR)


def interval_hours(history: History, symbol_id: str, times: np.ndarray) -> np.ndarray:
    """The funding interval each funding time closes (hours)."""
    if symbol_id in FOUR_HOURLY:
        return np.full(len(times), 4)
    if symbol_id == CHANGES_INTERVAL:
        return np.where(times > interval_change(history), 4, 8)
    return np.full(len(times), 8)


def _noise(times: np.ndarray, key: str, seed: int) -> np.ndarray:
    """Deterministic noise in [-1, 1) per time."""
    mixed = (times // 1000 * 2654435761 + zlib.crc32(key.encode()) + seed * 97) % (2**32)
    return (mixed * 2246822519 % (2**32)) / 2**31 - 1.0


def funding_rates(history: History, symbol_id: str, times: np.ndarray) -> np.ndarray:
    """Funding rates (fractions per interval) at the given funding times."""
    phase = zlib.crc32(symbol_id.encode()) % 628 / 100
    days = times / DAY_MS
    rate = 0.0001 + 0.00022 * np.sin(2 * np.pi * days / 3.7 + phase)
    rate += 0.00006 * _noise(times, symbol_id + "funding", history.seed)
    return np.round(rate * interval_hours(history, symbol_id, times) / 8, 8)


def open_interest(history: History, series: Series, times: np.ndarray) -> np.ndarray:
    """Open interest (base units, on the venue's lot grid) at the given times."""
    sid = series.spec.id
    price = close_ticks_before(series, times) * series.tick
    level = 2.0e9 * series.spec.notional * (0.4 if series.venue[0] == "bybit" else 1.0)
    phase = zlib.crc32(sid.encode()) % 628 / 100
    days = times / DAY_MS
    wave = 0.25 * np.sin(2 * np.pi * days / 9.0 + phase) + 0.08 * np.sin(2 * np.pi * days * 1.3)
    drift = 0.01 * _noise(times // 3_600_000 * 3_600_000, sid + "oi", history.seed)
    units = level / price * np.exp(wave + drift)
    return np.maximum(np.rint(units / series.step), 1) * series.step


def _times(first: int, last: int, step: int) -> np.ndarray:
    start = -(-first // step) * step
    if start > last:
        return np.empty(0, np.int64)
    return np.arange(start, last + 1, step, dtype=np.int64)


def _int(params: dict[str, str], name: str) -> int | None:
    text = params.get(name)
    if text in (None, ""):
        return None
    if not text.lstrip("-").isdigit():
        raise ValueError(name)
    return int(text)


def _window(times: np.ndarray, limit: int, oldest_first: bool) -> np.ndarray:
    return times[:limit] if oldest_first else times[-limit:]


def binance_oi_hist(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /futures/data/openInterestHist."""
    period, symbol = params.get("period", ""), params.get("symbol", "").upper()
    if period not in OI_PERIODS:
        return binance.error(-1120, "Invalid period.", 0)
    try:
        limit = _int(params, "limit") or 30
        start, end = _int(params, "startTime"), _int(params, "endTime")
    except ValueError as exc:
        return binance.error(-1100, f"Illegal characters found in parameter '{exc}'.", 0)
    if not 1 <= limit <= 500:
        return binance.error(-1130, "Data sent for parameter 'limit' is not valid.", 0)
    series = history.series("binance", "linear", symbol)
    if series is None:
        return binance.error(-1121, "Invalid symbol.", 0)
    horizon = now - BINANCE_OI_HORIZON_MS
    if start is not None and start < horizon:
        return binance.error(-1130, "Data sent for parameter 'startTime' is not valid.", 0)
    step = timeframe_ms(period)
    last = min(end if end is not None else now, now - step // 5)  # published a little late
    times = _times(max(start or horizon, horizon, series.t0 + step), last, step)
    times = _window(times, limit, oldest_first=start is not None)
    with history.lock:
        oi = open_interest(history, series, times) if len(times) else times
        price = close_ticks_before(series, times) * series.tick if len(times) else times
    rows = [
        {
            "symbol": symbol,
            "sumOpenInterest": f"{o:.8f}",
            "sumOpenInterestValue": f"{o * p:.8f}",
            "CMCCirculatingSupply": "19800000.000",
            "timestamp": int(t),
        }
        for t, o, p in zip(times.tolist(), oi.tolist(), price.tolist(), strict=True)
    ]
    return 200, rows, 0


def binance_oi_now(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /fapi/v1/openInterest: the current value."""
    symbol = params.get("symbol", "").upper()
    series = history.series("binance", "linear", symbol)
    if series is None or now < series.t0:
        return binance.error(-1121, "Invalid symbol.", 1)
    with history.lock:
        oi = open_interest(history, series, np.array([now], np.int64))[0]
    return 200, {"openInterest": f"{oi:.3f}", "symbol": symbol, "time": now}, 1


def binance_funding(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /fapi/v1/fundingRate: ascending, with the mark price."""
    symbol = params.get("symbol", "").upper()
    try:
        limit = _int(params, "limit") or 100
        start, end = _int(params, "startTime"), _int(params, "endTime")
    except ValueError as exc:
        return binance.error(-1100, f"Illegal characters found in parameter '{exc}'.", 0)
    if not 1 <= limit <= 1000:
        return binance.error(-1130, "Data sent for parameter 'limit' is not valid.", 0)
    series = history.series("binance", "linear", symbol)
    if series is None:
        return binance.error(-1121, "Invalid symbol.", 0)
    times = funding_times(history, symbol, start or 0, min(end if end is not None else now, now))
    times = _window(times, limit, oldest_first=start is not None)
    if not len(times):
        return 200, [], 0
    rates = funding_rates(history, symbol, times)
    with history.lock:
        marks = close_ticks_before(series, times) * series.tick
    jitter = (_noise(times, symbol, history.seed) * 4 + 4).astype(np.int64)  # real ones: +0..8 ms
    rows = [
        {
            "symbol": symbol,
            "fundingTime": int(t + j),
            "fundingRate": f"{r:.8f}",
            "markPrice": f"{m:.8f}",
        }
        for t, j, r, m in zip(times.tolist(), jitter.tolist(), rates, marks, strict=True)
    ]
    return 200, rows, 0


def binance_funding_info(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /fapi/v1/fundingInfo: the symbols with a non-default interval or caps."""
    ids = sorted(FOUR_HOURLY | {CHANGES_INTERVAL})
    rows = [
        {
            "symbol": sid,
            "adjustedFundingRateCap": "0.02000000",
            "adjustedFundingRateFloor": "-0.02000000",
            "fundingIntervalHours": current_interval_hours(sid),
            "disclaimer": False,
        }
        for sid in ids
        if history.series("binance", "linear", sid) is not None
    ]
    return 200, rows, 0


def _plain(value: float) -> str:
    text = f"{value:.8f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def bybit_open_interest(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /v5/market/open-interest: newest first, cursor paging back to the listing."""
    if params.get("category") != "linear":
        return bybit.error(now, "params error: category only support linear or inverse")
    period = BYBIT_OI_INTERVALS.get(params.get("intervalTime", ""))
    if period is None:
        return bybit.error(now, "params error: intervalTime invalid")
    try:
        limit = _int(params, "limit") or 50
        start, end = _int(params, "startTime"), _int(params, "endTime")
    except ValueError as exc:
        return bybit.error(now, f"params error: {exc} invalid")
    if not 1 <= limit <= 200:
        return bybit.error(now, "params error: limit invalid")
    symbol = params.get("symbol", "").upper()
    series = history.series("bybit", "linear", symbol)
    if series is None:
        return bybit.error(now, "params error: Symbol Is Invalid")
    step = timeframe_ms(period)
    last = min(end if end is not None else now, now)
    if params.get("cursor"):
        after = parse_qs(unquote(params["cursor"])).get("lasttime", [""])[0]
        if not after.isdigit():
            return bybit.error(now, "params error: cursor invalid")
        last = min(last, int(after) * 1000 - 1)
    times = _times(max(start or 0, series.t0 + step), last, step)[::-1][:limit]
    with history.lock:
        oi = open_interest(history, series, times) if len(times) else times
    more = len(times) == limit and times[-1] - step >= max(start or 0, series.t0 + step)
    cursor = (
        quote(f"lastid={len(times)}&lasttime={int(times[-1]) // 1000}", safe="") if more else ""
    )
    result = {
        "symbol": symbol,
        "category": "linear",
        "list": [
            {"openInterest": _plain(o), "timestamp": str(t)}
            for t, o in zip(times.tolist(), oi.tolist(), strict=True)
        ],
        "nextPageCursor": cursor,
    }
    return 200, bybit.envelope(result, now), 1


def bybit_funding(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /v5/market/funding/history: newest first; startTime alone is an error."""
    category = params.get("category")
    if category not in ("linear", "inverse"):
        return bybit.error(now, "params error: category invalid")
    try:
        limit = _int(params, "limit") or 200
        start, end = _int(params, "startTime"), _int(params, "endTime")
    except ValueError as exc:
        return bybit.error(now, f"params error: {exc} invalid")
    if start is not None and end is None:
        return bybit.error(now, "params error: endTime is required when startTime is passed")
    if not 1 <= limit <= 200:
        return bybit.error(now, "params error: limit invalid")
    symbol = params.get("symbol", "").upper()
    if history.series("bybit", "linear", symbol) is None:
        return bybit.error(now, "params error: Symbol Is Invalid")
    times = funding_times(history, symbol, start or 0, min(end if end is not None else now, now))
    times = times[::-1][:limit]
    rates = funding_rates(history, symbol, times[::-1])[::-1] if len(times) else []
    rows = [
        {"symbol": symbol, "fundingRate": _plain(r), "fundingRateTimestamp": str(t)}
        for t, r in zip(times.tolist(), list(rates), strict=True)
    ]
    return 200, bybit.envelope({"category": category, "list": rows}, now), 1


BINANCE_ROUTES = {
    "/futures/data/openInterestHist": binance_oi_hist,
    "/fapi/v1/openInterest": binance_oi_now,
    "/fapi/v1/fundingRate": binance_funding,
    "/fapi/v1/fundingInfo": binance_funding_info,
}
BYBIT_ROUTES = {
    "/v5/market/open-interest": bybit_open_interest,
    "/v5/market/funding/history": bybit_funding,
}
__all__ = ["BINANCE_ROUTES", "BYBIT_ROUTES", "TIMEFRAMES", "price_ticks_at"]
