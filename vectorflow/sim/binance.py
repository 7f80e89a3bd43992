"""Binance spot (/api/v3) and USDⓈ-M (/fapi/v1) endpoints of the simulator.

Each handler takes (history, params, now) and returns (status, body, weight); the server adds the
`X-MBX-USED-WEIGHT-1M` and `Date` headers. Bodies are JSON-able objects or ready JSON text.
"""

from __future__ import annotations

import json

from vectorflow.sim import venues
from vectorflow.sim.series import History, Series
from vectorflow.timeframes import TIMEFRAMES, timeframe_ms

Reply = tuple[int, object, int]

SPOT_MAX_LIMIT = 1000
USDM_MAX_LIMIT = 1500
DEFAULT_LIMIT = 500


def error(code: int, msg: str, weight: int, status: int = 400) -> Reply:
    """A Binance error body such as {"code": -1121, "msg": "Invalid symbol."}."""
    return status, {"code": code, "msg": msg}, weight


def _missing(name: str, weight: int) -> Reply:
    msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    return error(-1102, msg, weight)


def _int_param(params: dict[str, str], name: str) -> int | None:
    """An optional integer parameter; ValueError names it when it is not one."""
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit() or len(text) > 20:
        raise ValueError(name)
    return int(text)


def usdm_klines_weight(limit: int) -> int:
    """Request weight of GET /fapi/v1/klines for a given limit."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1000 else 10


def klines(history: History, params: dict[str, str], now: int, *, market: str) -> Reply:
    """GET /api/v3/klines (market='spot') or GET /fapi/v1/klines (market='linear')."""
    spot = market == "spot"
    try:
        limit = _int_param(params, "limit")
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
    except ValueError as exc:
        msg = f"Illegal characters found in parameter '{exc}'; legal range is '^[0-9]{{1,20}}$'."
        return error(-1100, msg, 2 if spot else 1)
    limit = DEFAULT_LIMIT if limit is None else limit
    weight = 2 if spot else usdm_klines_weight(limit)
    if limit < 1 or (not spot and limit > USDM_MAX_LIMIT):
        return error(-1130, "Data sent for parameter 'limit' is not valid.", weight)
    limit = min(limit, SPOT_MAX_LIMIT) if spot else limit
    symbol, interval = params.get("symbol", ""), params.get("interval", "")
    if not symbol:
        return _missing("symbol", weight)
    if not interval:
        return _missing("interval", weight)
    if interval not in TIMEFRAMES:
        return error(-1120, "Invalid interval.", weight)
    if start is not None and end is not None and start > end:
        return error(-1023, "Start time is greater than end time.", weight)
    found = history.window(
        "binance",
        market,
        symbol.upper(),
        interval,
        now,
        lo=start,
        hi=end,
        limit=limit,
        oldest_first=start is not None,
    )
    if found is None:
        return error(-1121, "Invalid symbol.", weight)
    times, rows, series = found
    return 200, format_klines(times, rows, series, interval, spot=spot), weight


def _scale(grid_text: str) -> int:
    """10**decimals for a power-of-ten tick or step such as '0.01' (divide ticks by it)."""
    scale = round(1 / float(grid_text))
    if abs(scale * float(grid_text) - 1) > 1e-12:
        raise ValueError(f"tick/step {grid_text} is not a power of ten")
    return scale


def format_klines(times, rows, series: Series, interval: str, *, spot: bool) -> str:
    """Binance kline rows as JSON text: numbers as strings with the venue's decimals."""
    grid = series.spec.grids[series.venue]
    if spot:
        p = q = quote = 8
    else:
        p = venues.binance_usdm_entry(series.spec, 0)["pricePrecision"]
        q, quote = grid.qty_decimals, 5
    px, qx = _scale(grid.tick), _scale(grid.step)
    step = timeframe_ms(interval)
    row = (
        f'[%d,"%.{p}f","%.{p}f","%.{p}f","%.{p}f","%.{q}f",%d,"%.{quote}f",%d,'
        f'"%.{q}f","%.{quote}f","0"]'
    )
    cols = zip(
        times.tolist(),
        (rows["o"] / px).tolist(),
        (rows["h"] / px).tolist(),
        (rows["l"] / px).tolist(),
        (rows["c"] / px).tolist(),
        (rows["v"] / qx).tolist(),
        (times + step - 1).tolist(),
        rows["q"].tolist(),
        rows["n"].tolist(),
        (rows["tb"] / qx).tolist(),
        rows["tq"].tolist(),
        strict=True,
    )
    return "[" + ",".join(row % c for c in cols) + "]"


def exchange_info_spot(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /api/v3/exchangeInfo, optionally filtered by `symbol` or `symbols` (a JSON array)."""
    weight = 20
    listed = venues.listed_ids("binance", "spot")
    wanted = None
    if params.get("symbol"):
        wanted = [params["symbol"]]
    elif params.get("symbols"):
        try:
            wanted = [str(s) for s in json.loads(params["symbols"])]
        except (ValueError, TypeError):
            return error(-1100, "Illegal characters found in parameter 'symbols'.", weight)
    if wanted is not None and any(s not in listed for s in wanted):
        return error(-1121, "Invalid symbol.", weight)
    return 200, venues.binance_spot_info(now, wanted or listed), weight


def exchange_info_usdm(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /fapi/v1/exchangeInfo."""
    return 200, venues.binance_usdm_info(now, history.listing), 1


def server_time(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /api/v3/time and /fapi/v1/time."""
    return 200, {"serverTime": now}, 1


def ping(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /api/v3/ping and /fapi/v1/ping."""
    return 200, {}, 1


ROUTES = {
    "/api/v3/klines": lambda h, p, n: klines(h, p, n, market="spot"),
    "/fapi/v1/klines": lambda h, p, n: klines(h, p, n, market="linear"),
    "/api/v3/exchangeInfo": exchange_info_spot,
    "/fapi/v1/exchangeInfo": exchange_info_usdm,
    "/api/v3/time": server_time,
    "/fapi/v1/time": server_time,
    "/api/v3/ping": ping,
    "/fapi/v1/ping": ping,
}

PREFIXES = ("/api/", "/fapi/", "/sapi/", "/dapi/", "/eapi/", "/papi/", "/futures/", "/wapi/")


def weight_group(path: str) -> str:
    """Which per-minute weight budget a path counts against: 'spot' or 'usdm'."""
    return "usdm" if path.startswith(("/fapi/", "/futures/")) else "spot"


def not_found(path: str) -> Reply:
    """Answer for a path the simulator does not serve."""
    return error(-1020, "This operation is not supported.", 0, 404)
