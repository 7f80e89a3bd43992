"""Open interest history of perpetuals: Binance openInterestHist, Bybit v5 open-interest.

Binance's 30-day horizon clips the window before any request; Bybit's quote value is computed
from candle closes. Details per exchange: docs/exchanges.md#what-is-fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import ccxt
import numpy as np

from vectorflow.errors import InvalidInput, MalformedResponse
from vectorflow.exchanges.client import call_endpoint
from vectorflow.exchanges.klines import FetchStats, fetch_closed_candles
from vectorflow.exchanges.specs import HistoryEndpoint, market_data_spec
from vectorflow.timeframes import now_ms, timeframe_ms

log = logging.getLogger(__name__)

PAGES_PER_WINDOW = 10  # Bybit: a window of this many pages is fetched, then landed
OpenInterest = dict[str, np.ndarray]  # time (int64 ms), open_interest, open_interest_value


@dataclass
class OpenInterestStats:
    """Requests made and rows seen by one fetch."""

    requests: int = 0
    rows: int = 0


def _rows(payload: object, where: str) -> list:
    if isinstance(payload, list):
        return payload
    try:
        rows = payload["result"]["list"]  # type: ignore[index]
    except (TypeError, KeyError):
        raise MalformedResponse(f"{where}: response has no result.list") from None
    if not isinstance(rows, list):
        raise MalformedResponse(f"{where}: result.list is {type(rows).__name__}, not a list")
    return rows


def _columns(rows: list, fields: tuple[str, ...], where: str) -> list[np.ndarray]:
    try:
        return [np.array([float(r[f]) for r in rows], dtype=np.float64) for f in fields]
    except (TypeError, ValueError, KeyError) as exc:
        raise MalformedResponse(f"{where}: open interest rows malformed: {exc!r}") from None


def _checked(time: np.ndarray, oi: np.ndarray, value: np.ndarray, where: str) -> OpenInterest:
    order = np.argsort(time, kind="stable")
    time, oi, value = time[order].astype(np.int64), oi[order], value[order]
    if len(time) and (np.diff(time) <= 0).any():
        raise MalformedResponse(f"{where}: repeated open interest times")
    if (oi < 0).any() or not np.isfinite(oi).all():
        raise MalformedResponse(f"{where}: negative or missing open interest")
    return {"time": time, "open_interest": oi, "open_interest_value": value}


def parse_binance_oi_hist(payload: object, where: str) -> OpenInterest:
    """Binance `[{symbol, sumOpenInterest, sumOpenInterestValue, timestamp}, ...]`, ascending."""
    rows = _rows(payload, where)
    time, oi, value = _columns(
        rows, ("timestamp", "sumOpenInterest", "sumOpenInterestValue"), where
    )
    return _checked(time, oi, value, where)


def parse_bybit_oi(payload: object, where: str) -> tuple[OpenInterest, str]:
    """Bybit `result.list = [{openInterest, timestamp}, ...]` newest first, and the next cursor."""
    rows = _rows(payload, where)
    time, oi = _columns(rows, ("timestamp", "openInterest"), where)
    cursor = payload["result"].get("nextPageCursor") or ""  # type: ignore[index]
    return _checked(time, oi, np.full(len(oi), np.nan), where), cursor


def parse_binance_oi_now(payload: object, where: str) -> tuple[int, float]:
    """Binance `GET /fapi/v1/openInterest` `{openInterest, symbol, time}`: (time, amount)."""
    try:
        return int(payload["time"]), float(payload["openInterest"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError) as exc:
        raise MalformedResponse(f"{where}: malformed open interest: {exc!r}") from None


def concat(parts: list[OpenInterest]) -> OpenInterest:
    """Pages joined, ascending, each time once."""
    if not parts:
        empty = np.empty(0)
        return {
            "time": empty.astype(np.int64),
            "open_interest": empty,
            "open_interest_value": empty,
        }
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    _, first = np.unique(joined["time"], return_index=True)
    return {k: v[first] for k, v in joined.items()}


def usable_since(endpoint: HistoryEndpoint, since_ms: int, period: str, now: int) -> int:
    """`since` clipped to what the exchange serves (one period inside Binance's horizon)."""
    if endpoint.horizon_days is None:
        return since_ms
    return max(since_ms, now - int(endpoint.horizon_days * 86_400_000) + timeframe_ms(period))


def fetch_open_interest(
    client: ccxt.Exchange,
    market: dict,
    period: str,
    since_ms: int,
    until_ms: int,
    *,
    stats: OpenInterestStats | None = None,
    clock: Callable[[], int] = now_ms,
) -> Iterator[OpenInterest]:
    """Yield open interest of a perpetual at times in [since, until), ascending, page by page."""
    endpoint = market_data_spec(client.id).open_interest
    if period not in endpoint.periods:
        raise InvalidInput(
            f"period {period!r}: {client.id} serves open interest at {', '.join(endpoint.periods)}"
        )
    stats = stats if stats is not None else OpenInterestStats()
    since_ms = usable_since(endpoint, since_ms, period, clock())
    where = f"{client.id} linear {market['symbol']} open interest {period}"
    pages = _bybit_pages if endpoint.cursor else _binance_pages
    for page in pages(client, market, endpoint, period, since_ms, until_ms, stats, where):
        stats.rows += len(page["time"])
        if len(page["time"]):
            yield page


def _binance_pages(client, market, endpoint, period, since, until, stats, where):
    step = timeframe_ms(period)
    start = -(-since // step) * step
    while start < until:
        end = min(until - 1, start + endpoint.page_limit * step - 1)
        params = {
            "symbol": market["id"],
            "period": endpoint.periods[period],
            "startTime": start,
            "endTime": end,
            "limit": endpoint.page_limit,
        }
        page = call_endpoint(
            client,
            endpoint.method,
            params,
            what=where,
            check=lambda p: parse_binance_oi_hist(p, where),
        )
        stats.requests += 1
        yield page
        start = end + 1


def _bybit_pages(client, market, endpoint, period, since, until, stats, where):
    """Windows of PAGES_PER_WINDOW pages, oldest window first; each walked newest first."""
    span = endpoint.page_limit * PAGES_PER_WINDOW * timeframe_ms(period)
    start = since
    while start < until:
        end = min(until, start + span)
        parts, cursor = [], None
        while True:
            params = {
                "category": "linear",
                "symbol": market["id"],
                "intervalTime": endpoint.periods[period],
                "startTime": start,
                "endTime": end - 1,
                "limit": endpoint.page_limit,
            }
            if cursor:
                params["cursor"] = cursor
            page, cursor = call_endpoint(
                client,
                endpoint.method,
                params,
                what=where,
                check=lambda p: parse_bybit_oi(p, where),
            )
            stats.requests += 1
            parts.append(page)
            if not cursor or not len(page["time"]):
                break
        yield concat(parts)
        start = end


def add_values_from_closes(
    client: ccxt.Exchange, market: dict, period: str, page: OpenInterest, *, clock=now_ms
) -> tuple[OpenInterest, int]:
    """Fill missing quote values with amount x the close of the candle ending at each time.

    Returns the page and the kline requests made; a time without a candle keeps a null value.
    """
    missing = np.isnan(page["open_interest_value"])
    if not missing.any():
        return page, 0
    step = timeframe_ms(period)
    times = page["time"][missing]
    stats = FetchStats()
    closes: dict[int, float] = {}
    lo, hi = int(times.min()) - step, int(times.max())
    for candles in fetch_closed_candles(client, market, period, lo, hi, stats=stats, clock=clock):
        for t, c in zip(candles["open_time"].tolist(), candles["close"].tolist(), strict=True):
            closes[int(t) + step] = c
    value = page["open_interest_value"].copy()
    amounts = page["open_interest"][missing].tolist()
    value[missing] = [
        closes.get(int(t), np.nan) * a for t, a in zip(times.tolist(), amounts, strict=True)
    ]
    return {**page, "open_interest_value": value}, stats.requests
