"""Funding rate history of perpetuals: Binance fundingRate, Bybit v5 funding/history.

Each row's `interval_hours` is the time since the previous funding, read from the exchange's
own times. Paging, intervals and mark prices per exchange: docs/exchanges.md#what-is-fetched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import ccxt
import numpy as np

from vectorflow.errors import MalformedResponse
from vectorflow.exchanges.client import call_endpoint
from vectorflow.exchanges.specs import market_data_spec

log = logging.getLogger(__name__)

HOUR = 3_600_000
INTERVALS_HOURS = (1, 2, 4, 8)
DEFAULT_INTERVAL_HOURS = 8  # Binance: symbols fundingInfo does not list
Funding = dict[str, np.ndarray]  # funding_time (int64 ms), funding_rate, mark_price (nan: none)

_info_lock = threading.Lock()
_info_cache: dict[tuple[str, str], dict[str, float]] = {}


@dataclass
class FundingStats:
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


def _funding(rows: list, time_key: str, mark_key: str | None, where: str) -> Funding:
    try:
        times = np.array([int(r[time_key]) for r in rows], dtype=np.int64)
        rates = np.array([float(r["fundingRate"]) for r in rows], dtype=np.float64)
        marks = np.array(
            [
                float(r[mark_key]) if mark_key and r.get(mark_key) not in (None, "") else np.nan
                for r in rows
            ],
            dtype=np.float64,
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise MalformedResponse(f"{where}: funding rows malformed: {exc!r}") from None
    order = np.argsort(times, kind="stable")
    times, rates, marks = times[order], rates[order], marks[order]
    if len(times) and (np.diff(times) <= 0).any():
        raise MalformedResponse(f"{where}: repeated funding times")
    if not np.isfinite(rates).all() or (np.abs(rates) > 0.5).any():
        raise MalformedResponse(f"{where}: funding rate missing or beyond +/-50%")
    return {"funding_time": times, "funding_rate": rates, "mark_price": marks}


def parse_binance_funding(payload: object, where: str) -> Funding:
    """Binance `[{symbol, fundingRate, fundingTime, markPrice}, ...]`, ascending."""
    return _funding(_rows(payload, where), "fundingTime", "markPrice", where)


def parse_bybit_funding(payload: object, where: str) -> Funding:
    """Bybit `result.list = [{symbol, fundingRate, fundingRateTimestamp}, ...]`, newest first."""
    return _funding(_rows(payload, where), "fundingRateTimestamp", None, where)


def parse_binance_funding_info(payload: object, where: str) -> dict[str, float]:
    """Binance fundingInfo `[{symbol, fundingIntervalHours, ...}, ...]`: hours by symbol id."""
    try:
        return {str(r["symbol"]): float(r["fundingIntervalHours"]) for r in _rows(payload, where)}
    except (TypeError, ValueError, KeyError) as exc:
        raise MalformedResponse(f"{where}: fundingInfo malformed: {exc!r}") from None


def current_interval_hours(client: ccxt.Exchange, market: dict) -> float:
    """The funding interval the exchange gives for `market` now (hours)."""
    spec = market_data_spec(client.id)
    if spec.funding_info is None:
        minutes = (market.get("info") or {}).get("fundingInterval")
        return float(minutes) / 60 if minutes else float(DEFAULT_INTERVAL_HOURS)
    key = (client.id, str(client.urls["api"]))
    with _info_lock:
        known = _info_cache.get(key)
    if known is None:
        where = f"{client.id} funding intervals"
        known = call_endpoint(
            client,
            spec.funding_info,
            {},
            what=where,
            check=lambda p: parse_binance_funding_info(p, where),
        )
        with _info_lock:
            _info_cache[key] = known
    return known.get(market["id"], float(DEFAULT_INTERVAL_HOURS))


def interval_hours(times: np.ndarray, previous: int | None, current: float) -> np.ndarray:
    """Hours since the previous funding per row (previous row, or `previous` for the first)."""
    if len(times) == 0:
        return np.empty(0)
    before = np.r_[previous if previous is not None else -1, times[:-1]]
    hours = np.round((times - before) / HOUR).astype(float)
    valid = np.isin(hours, INTERVALS_HOURS) & (before >= 0)
    if not valid[0]:  # no previous funding: the next row's interval, else the current one
        hours[0] = hours[1] if len(times) > 1 and valid[1] else current
        valid[0] = True
    return np.where(valid, hours, current)


def fetch_funding(
    client: ccxt.Exchange,
    market: dict,
    since_ms: int,
    until_ms: int,
    *,
    stats: FundingStats | None = None,
) -> Iterator[Funding]:
    """Yield funding rows of a perpetual with times in [since, until), ascending."""
    endpoint = market_data_spec(client.id).funding
    stats = stats if stats is not None else FundingStats()
    where = f"{client.id} linear {market['symbol']} funding"
    if endpoint.newest_first:
        yield from _backwards(client, market, endpoint, since_ms, until_ms, stats, where)
        return
    start = since_ms
    while start < until_ms:
        params = {
            "symbol": market["id"],
            "startTime": start,
            "endTime": until_ms - 1,
            "limit": endpoint.page_limit,
        }
        page = call_endpoint(
            client,
            endpoint.method,
            params,
            what=where,
            check=lambda p: parse_binance_funding(p, where),
        )
        stats.requests += 1
        times = page["funding_time"]
        stats.rows += len(times)
        if len(times):
            yield page
        if len(times) < endpoint.page_limit:
            return
        start = int(times[-1]) + 1


def _backwards(client, market, endpoint, since, until, stats, where) -> Iterator[Funding]:
    """Bybit: pages ending at `endTime`, newest first, walked back to `since`; then ascending."""
    parts, end = [], until - 1
    while end >= since:
        params = {
            "category": "linear",
            "symbol": market["id"],
            "startTime": since,
            "endTime": end,
            "limit": endpoint.page_limit,
        }
        page = call_endpoint(
            client,
            endpoint.method,
            params,
            what=where,
            check=lambda p: parse_bybit_funding(p, where),
        )
        stats.requests += 1
        times = page["funding_time"]
        stats.rows += len(times)
        if len(times):
            parts.append(page)
        if len(times) < endpoint.page_limit:
            break
        end = int(times[0]) - 1
    for page in reversed(parts):
        keep = page["funding_time"] >= since
        yield {k: v[keep] for k, v in page.items()}
