"""Bybit v5 market endpoints of the simulator (/v5/market/...).

Errors come the Bybit way: HTTP 200 with retCode != 0. Bybit sends no weight header; each request
is logged with weight 1.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, quote, unquote

from vectorflow.sim import venues
from vectorflow.sim.series import History, Series

Reply = tuple[int, object, int]

INTERVALS = {
    "1": "1m",
    "3": "3m",
    "5": "5m",
    "15": "15m",
    "30": "30m",
    "60": "1h",
    "120": "2h",
    "240": "4h",
    "360": "6h",
    "720": "12h",
    "D": "1d",
    "W": "1w",
}
KLINE_MAX_LIMIT = 1000
KLINE_DEFAULT_LIMIT = 200
INSTRUMENTS_MAX_LIMIT = 1000
INSTRUMENTS_DEFAULT_LIMIT = 500


def envelope(result: object, now: int, code: int = 0, msg: str = "OK") -> dict:
    """The v5 envelope {"retCode", "retMsg", "result", "retExtInfo", "time"}."""
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now}


def error(now: int, msg: str, code: int = 10001, status: int = 200) -> Reply:
    """A Bybit error: HTTP 200 (by default) with a non-zero retCode."""
    return status, envelope({}, now, code, msg), 1


def _int(params: dict[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise ValueError(name)
    return int(text)


def kline(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /v5/market/kline: rows newest first, all strings."""
    category = params.get("category") or "linear"  # documented default for this endpoint
    if category not in ("spot", "linear", "inverse"):
        return error(now, "Illegal category")
    try:
        start, end, limit = _int(params, "start"), _int(params, "end"), _int(params, "limit")
    except ValueError as exc:
        return error(now, f"params error: {exc} invalid")
    limit = KLINE_DEFAULT_LIMIT if limit is None else min(max(limit, 1), KLINE_MAX_LIMIT)
    timeframe = INTERVALS.get(params.get("interval", ""))
    if timeframe is None:
        return error(now, "Invalid period!")
    symbol = params.get("symbol", "").upper()
    if start is not None and end is not None and start > end:
        return 200, envelope({"category": category, "symbol": symbol, "list": []}, now), 1
    # Which `limit` candles when more match (the list is newest first either way):
    # - `end` given (with or without `start`): the newest `limit` with start <= open <= end, i.e.
    #   those nearest `end` -- page backwards from `end`, as Bybit's newest-first lists suggest;
    # - only `start`: the oldest `limit` from `start` on. ccxt 4.5's fetch_ohlcv(since, limit)
    #   sends only `start` and relies on this, and users report `start=9999&limit=1` answering
    #   the first candle ever listed;
    # - neither: the newest `limit` up to now.
    # Bybit documents no rule; robust backfill sends both start and end, spanning <= limit rows.
    found = None
    if category != "inverse":
        found = history.window(
            "bybit",
            category,
            symbol,
            timeframe,
            now,
            lo=start,
            hi=end,
            limit=limit,
            oldest_first=start is not None and end is None,
        )
    if found is None:
        return error(now, "Not supported symbols")
    times, rows, series = found
    head = json.dumps({"category": category, "symbol": symbol}, separators=(",", ":"))[:-1]
    listed = format_rows(times, rows, series)
    return (
        200,
        (
            f'{{"retCode":0,"retMsg":"OK","result":{head},"list":{listed}}},'
            f'"retExtInfo":{{}},"time":{now}}}'
        ),
        1,
    )


def format_rows(times, rows, series: Series) -> str:
    """Rows [start, open, high, low, close, volume, turnover] as JSON text, newest first."""
    grid = series.spec.grids[series.venue]
    px, qx = round(1 / float(grid.tick)), round(1 / float(grid.step))
    cols = zip(
        times[::-1].tolist(),
        (rows["o"][::-1] / px).tolist(),
        (rows["h"][::-1] / px).tolist(),
        (rows["l"][::-1] / px).tolist(),
        (rows["c"][::-1] / px).tolist(),
        (rows["v"][::-1] / qx).tolist(),
        rows["q"][::-1].round(8).tolist(),
        strict=True,
    )
    text = ",".join(_ROW % c for c in cols)
    if "e" in text:  # a tiny value came out in exponent form: print those rows the slow way
        text = ",".join(_slow_row(r) for r in json.loads("[" + text + "]"))
    return "[" + text + "]"


_ROW = '["%d","%.15g","%.15g","%.15g","%.15g","%.15g","%.15g"]'


def _slow_row(row: list[str]) -> str:
    """One row with every number in plain decimal notation."""
    return json.dumps([row[0]] + [_plain(float(x)) for x in row[1:]], separators=(",", ":"))


def _plain(value: float) -> str:
    text = f"{value:.15g}"
    if "e" in text:
        text = f"{value:.12f}".rstrip("0").rstrip(".")
    return text


def instruments_info(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /v5/market/instruments-info for spot and linear (linear pages with a cursor)."""
    category = params.get("category")
    if not category:
        return error(now, "params error: category is required")
    if category not in ("spot", "linear", "inverse", "option"):
        return error(now, "Illegal category")
    items = []
    if category in ("spot", "linear"):
        items = venues.bybit_instruments(category, history.listing)
    for key, field in (("symbol", "symbol"), ("baseCoin", "baseCoin"), ("status", "status")):
        if params.get(key):
            items = [i for i in items if i[field].upper() == params[key].upper()]
    if category == "spot":
        return 200, envelope({"category": "spot", "list": items}, now), 1
    try:
        limit = _int(params, "limit")
    except ValueError:
        return error(now, "params error: limit invalid")
    limit = min(max(limit or INSTRUMENTS_DEFAULT_LIMIT, 1), INSTRUMENTS_MAX_LIMIT)
    first = 0
    if params.get("cursor"):
        after = parse_qs(unquote(params["cursor"])).get("last", [""])[0]
        ids = [i["symbol"] for i in items]
        if after not in ids:
            return error(now, "params error: cursor invalid")
        first = ids.index(after) + 1
    page = items[first : first + limit]
    cursor = ""
    if page and first + limit < len(items):
        cursor = quote(f"first={page[0]['symbol']}&last={page[-1]['symbol']}", safe="")
    result = {"category": category, "list": page, "nextPageCursor": cursor}
    return 200, envelope(result, now), 1


def server_time(history: History, params: dict[str, str], now: int) -> Reply:
    """GET /v5/market/time."""
    result = {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}
    return 200, envelope(result, now), 1


ROUTES = {
    "/v5/market/kline": kline,
    "/v5/market/instruments-info": instruments_info,
    "/v5/market/time": server_time,
}

PREFIXES = ("/v5/", "/v3/", "/v2/", "/spot/", "/contract/", "/derivatives/", "/asset/", "/user/")


def not_found(path: str, now: int) -> Reply:
    """Answer for a path the simulator does not serve."""
    msg = f"Path {path} is not served by the VectorFlow simulator"
    return 404, envelope({}, now, 10001, msg), 0
