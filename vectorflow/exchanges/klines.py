"""Closed candles from the exchanges' raw kline endpoints: paging, parsing and validation.

ccxt's `fetch_ohlcv` drops quote volume, trade count and taker-buy volume, so the kline endpoints
are called through ccxt's raw methods (its transport, rate limiter and errors still apply) and
the rows are parsed here. Every page is validated before anything is yielded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import ccxt
import numpy as np

from vectorflow.errors import MalformedResponse
from vectorflow.exchanges.client import call_endpoint
from vectorflow.exchanges.specs import exchange_spec
from vectorflow.timeframes import floor_ms, now_ms, timeframe_ms

log = logging.getLogger(__name__)

COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_volume",
)
Candles = dict[str, np.ndarray]


@dataclass
class FetchStats:
    """What one series fetch cost and found."""

    requests: int = 0
    rows_received: int = 0
    open_candles_dropped: int = 0
    server_now: int | None = None  # the exchange's clock at the last page (what is closed)


def empty_candles() -> Candles:
    """A page with no rows."""
    return {
        c: np.empty(0, dtype=np.int64 if c in ("open_time", "trades") else np.float64)
        for c in COLUMNS
    }


def _as_matrix(rows: list, width: int, where: str) -> np.ndarray:
    try:
        matrix = np.array([row[:width] for row in rows], dtype=np.float64)
    except (TypeError, ValueError, IndexError) as exc:
        raise MalformedResponse(f"{where}: kline rows are not numeric: {exc}") from None
    if matrix.ndim != 2 or matrix.shape[1] != width:
        raise MalformedResponse(
            f"{where}: kline rows have {matrix.shape[-1]} fields, expected {width}"
        )
    return matrix


#: where each column sits in a raw kline row; a column an exchange does not send is null
BINANCE_FIELDS = {
    "open_time": 0,
    "open": 1,
    "high": 2,
    "low": 3,
    "close": 4,
    "volume": 5,
    "quote_volume": 7,
    "trades": 8,
    "taker_buy_volume": 9,
}
BYBIT_FIELDS = {
    "open_time": 0,
    "open": 1,
    "high": 2,
    "low": 3,
    "close": 4,
    "volume": 5,
    "quote_volume": 6,
}


def _columns(m: np.ndarray, fields: dict[str, int]) -> Candles:
    nulls = np.full(len(m), np.nan)
    return {name: m[:, fields[name]] if name in fields else nulls for name in COLUMNS}


def parse_binance(payload: object, where: str) -> Candles:
    """Binance rows `[openTime, o, h, l, c, v, closeTime, quoteVolume, trades, takerBuy, ..]`."""
    if not isinstance(payload, list):
        raise MalformedResponse(
            f"{where}: expected a list of kline rows, got {type(payload).__name__}"
        )
    if not payload:
        return empty_candles()
    return _columns(_as_matrix(payload, 11, where), BINANCE_FIELDS)


def parse_bybit(payload: object, where: str) -> Candles:
    """Bybit v5 `result.list` rows `[start, o, h, l, c, volume, turnover]`, newest first."""
    try:
        rows = payload["result"]["list"]  # type: ignore[index]
    except (TypeError, KeyError):
        raise MalformedResponse(f"{where}: response has no result.list") from None
    if not isinstance(rows, list):
        raise MalformedResponse(f"{where}: result.list is {type(rows).__name__}, not a list")
    if not rows:
        return empty_candles()
    return _columns(_as_matrix(rows, 7, where)[::-1], BYBIT_FIELDS)


PARSERS: dict[str, Callable[[object, str], Candles]] = {
    "binance": parse_binance,
    "bybit": parse_bybit,
}


def validate(candles: Candles, timeframe: str, where: str) -> Candles:
    """Check every row (finite, aligned, ordered, OHLC consistent, volumes ≥ 0); typed arrays."""
    candles = _in_order(candles, where)
    t = candles["open_time"]
    if len(t) == 0:
        return empty_candles()
    required = ("open_time", "open", "high", "low", "close", "volume", "quote_volume")
    problems = []
    for name in required:
        if not np.isfinite(candles[name]).all():
            problems.append(f"{name} has a missing or non-numeric value")
    times = t.astype(np.int64)
    if problems:
        raise MalformedResponse(f"{where}: " + "; ".join(problems))
    o, h, lo, c = candles["open"], candles["high"], candles["low"], candles["close"]
    v = candles["volume"]
    checks = {
        "open time not an integer of ms": times != t,
        f"open time not aligned to {timeframe}": (times - floor_ms_array(times, timeframe)) != 0,
        "price not positive": (lo <= 0),
        "high below max(open, close)": h < np.maximum(o, c),
        "low above min(open, close)": lo > np.minimum(o, c),
        "negative volume": (v < 0) | (candles["quote_volume"] < 0),
        "taker-buy volume outside [0, volume]": (candles["taker_buy_volume"] < 0)
        | (candles["taker_buy_volume"] > v * (1 + 1e-9)),
        "negative trade count": candles["trades"] < 0,
    }
    if len(times) > 1:
        checks["open times not strictly increasing"] = np.r_[False, np.diff(times) <= 0]
    for rule, bad in checks.items():
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise MalformedResponse(f"{where}: row {row} (open_time {int(t[row])}): {rule}")
    out = {name: np.asarray(candles[name], dtype=np.float64) for name in COLUMNS}
    out["open_time"] = times
    return out


def _in_order(candles: Candles, where: str) -> Candles:
    """Rows sorted by open time with exact repeats dropped; repeats that differ are malformed."""
    t = candles["open_time"]
    if len(t) < 2 or (np.diff(t) > 0).all():
        return candles
    order = np.argsort(t, kind="stable")
    rows = {name: values[order] for name, values in candles.items()}
    stacked = np.column_stack([rows[name] for name in COLUMNS])
    repeat = np.r_[False, np.diff(rows["open_time"]) == 0]
    a, b = stacked[1:], stacked[:-1]
    same = np.r_[False, ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)]
    if (repeat & ~same).any():
        at = int(rows["open_time"][np.flatnonzero(repeat & ~same)[0]])
        raise MalformedResponse(f"{where}: two different rows for open time {at}")
    log.info("%s: %d rows out of order or repeated in one page, repaired", where, len(t))
    return {name: values[~repeat] for name, values in rows.items()}


def floor_ms_array(times: np.ndarray, timeframe: str) -> np.ndarray:
    """`floor_ms` for an array of open times."""
    step = timeframe_ms(timeframe)
    offset = floor_ms(0, timeframe) % step
    return (times - offset) // step * step + offset


def _server_time(client: ccxt.Exchange, payload: object) -> int | None:
    """The exchange's own clock from the last response (Bybit `time`, else the HTTP Date header)."""
    if isinstance(payload, dict) and isinstance(payload.get("time"), (int, float)):
        return int(payload["time"])
    headers = client.last_response_headers or {}
    date = headers.get("Date") or headers.get("date")
    if date:
        try:
            return int(parsedate_to_datetime(date).timestamp() * 1000)
        except (TypeError, ValueError):
            return None
    return None


def _request(
    exchange: str,
    market_id: str,
    market: str,
    timeframe: str,
    interval: str,
    start: int,
    end: int,
    limit: int,
) -> dict:
    if exchange == "bybit":
        return {
            "category": market,
            "symbol": market_id,
            "interval": interval,
            "start": start,
            "end": end,
            "limit": limit,
        }
    return {
        "symbol": market_id,
        "interval": interval,
        "startTime": start,
        "endTime": end,
        "limit": limit,
    }


def _slice(candles: Candles, keep: np.ndarray) -> Candles:
    return {name: values[keep] for name, values in candles.items()}


def fetch_closed_candles(
    client: ccxt.Exchange,
    market: dict,
    timeframe: str,
    since_ms: int,
    until_ms: int,
    *,
    stats: FetchStats | None = None,
    clock: Callable[[], int] = now_ms,
) -> Iterator[Candles]:
    """Yield validated closed candles of `market`, open time in [since_ms, until_ms), oldest first.

    Pages with the endpoint's best limit and stops as soon as the exchange has nothing further:
    a short or empty page, the still-open candle (never yielded), or `until_ms`.
    """
    spec = exchange_spec(client.id)
    kind = "spot" if market["spot"] else "linear"
    endpoint = spec.kline_endpoint(kind)
    step = timeframe_ms(timeframe)
    interval = client.timeframes[timeframe]
    stats = stats if stats is not None else FetchStats()
    start = floor_ms(since_ms + step - 1, timeframe)  # first open time at or after since
    listed = market.get("created")
    if isinstance(listed, (int, float)) and listed > start:
        start = floor_ms(int(listed), timeframe)  # nothing to ask for before the listing
    where = f"{client.id} {kind} {market['symbol']} {timeframe}"
    parse = PARSERS[spec.row_format]

    def check(payload: object) -> tuple[object, Candles]:
        return payload, validate(parse(payload, where), timeframe, where)

    while start < until_ms:
        end = until_ms - 1
        if endpoint.bounded_window:
            end = min(end, start + endpoint.page_limit * step - 1)
        params = _request(
            client.id, market["id"], kind, timeframe, interval, start, end, endpoint.page_limit
        )
        payload, page = call_endpoint(client, endpoint.method, params, what=where, check=check)
        stats.requests += 1
        times = page["open_time"]
        stats.rows_received += len(times)
        server_now = min(clock(), _server_time(client, payload) or clock())
        stats.server_now = server_now
        closed = (times + step <= server_now) & (times >= start) & (times < until_ms)
        stats.open_candles_dropped += int(((times + step > server_now) & (times < until_ms)).sum())
        if closed.any():
            yield _slice(page, closed)
        if len(times) == 0:
            resume = None
            if endpoint.bounded_window and end < until_ms - 1:
                resume = _first_open_after(client, endpoint.method, params, end, stats, where)
            if resume is None:
                return  # the exchange has nothing at or after this start
            start = resume
            continue
        if not closed[-1] or times[-1] + step >= until_ms:
            return  # reached the open candle or the end of the range
        if not endpoint.bounded_window and len(times) < endpoint.page_limit:
            return  # a short unbounded page: the exchange has nothing further
        start = int(times[-1]) + step


def _first_open_after(
    client: ccxt.Exchange, method: str, params: dict, end: int, stats: FetchStats, where: str
) -> int | None:
    """After an empty bounded window, one probe: the first open time after `end`, or None.

    Bybit answers a request with `start` and no `end` from `start` forward, so one row tells
    where data resumes (a listing or the end of an outage) without walking the empty range.
    """
    probe = {k: v for k, v in params.items() if k != "end"} | {"start": end + 1, "limit": 1}
    parse = PARSERS[exchange_spec(client.id).row_format]
    found = call_endpoint(
        client, method, probe, what=f"{where} (probe)", check=lambda p: parse(p, where)
    )["open_time"]
    stats.requests += 1
    return int(found.min()) if len(found) and found.min() > end else None
