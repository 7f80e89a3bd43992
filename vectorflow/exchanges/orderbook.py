"""Order book snapshots: top N levels per side from Binance depth and Bybit v5 orderbook.

The snapshot time is the exchange's own timestamp where it sends one (Binance USDⓈ-M `T`, the
transaction time; Bybit `ts`), else the local receive time (Binance spot), and `time_source`
says which. A crossed or empty book, or one with a bad level, is rejected with
MalformedResponse and never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ccxt
import numpy as np
import pyarrow as pa

from vectorflow.errors import InvalidInput, MalformedResponse
from vectorflow.exchanges.client import call_endpoint
from vectorflow.exchanges.specs import DepthEndpoint, market_data_spec
from vectorflow.lake.schema import ORDERBOOK_LEVELS
from vectorflow.timeframes import now_ms

DEFAULT_LEVELS = 100


@dataclass(frozen=True)
class OrderBook:
    """One validated snapshot: `bids` and `asks` are (n, 2) arrays of price, amount; best first."""

    exchange: str
    market: str
    symbol: str
    snapshot_time: int
    time_source: str  # exchange | local
    received_at: int
    update_id: int | None
    bids: np.ndarray
    asks: np.ndarray
    source: str = "rest"  # rest (a REST snapshot) | stream (a book kept from a WebSocket stream)


def request_limit(endpoint: DepthEndpoint, levels: int) -> int:
    """The `limit` to send for `levels` levels: the smallest accepted one that is large enough."""
    if not 1 <= levels <= endpoint.max_levels:
        raise InvalidInput(f"levels {levels}: this endpoint serves 1 to {endpoint.max_levels}")
    if not endpoint.allowed:
        return levels
    return min(a for a in endpoint.allowed if a >= levels)


def _levels(rows: object, side: str, where: str) -> np.ndarray:
    if not isinstance(rows, list):
        raise MalformedResponse(f"{where}: {side} is {type(rows).__name__}, not a list")
    try:
        levels = np.array([row[:2] for row in rows], dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError, IndexError) as exc:
        raise MalformedResponse(f"{where}: {side} levels are not [price, amount]: {exc}") from None
    return levels


def validate_book(bids: np.ndarray, asks: np.ndarray, where: str) -> None:
    """Reject an empty, crossed or malformed book (MalformedResponse names the problem)."""
    for side, levels, descending in (("bids", bids, True), ("asks", asks, False)):
        if len(levels) == 0:
            raise MalformedResponse(f"{where}: empty book ({side} side has no level)")
        if not np.isfinite(levels).all() or (levels[:, 0] <= 0).any() or (levels[:, 1] < 0).any():
            raise MalformedResponse(f"{where}: {side} hold a non-positive or missing value")
        steps = np.diff(levels[:, 0])
        if len(steps) and ((steps >= 0).any() if descending else (steps <= 0).any()):
            order = "descending" if descending else "ascending"
            raise MalformedResponse(f"{where}: {side} prices are not strictly {order}")
    if bids[0, 0] >= asks[0, 0]:
        raise MalformedResponse(
            f"{where}: crossed book: best bid {bids[0, 0]:g} >= best ask {asks[0, 0]:g}"
        )


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def parse_binance_depth(payload: object, where: str, received_at: int) -> dict:
    """Binance `{lastUpdateId, [E, T,] bids, asks}`: the fields of an OrderBook."""
    if not isinstance(payload, dict):
        raise MalformedResponse(f"{where}: expected a depth object, got {type(payload).__name__}")
    bids = _levels(payload.get("bids"), "bids", where)
    asks = _levels(payload.get("asks"), "asks", where)
    validate_book(bids, asks, where)
    stamp = _int(payload.get("T"))
    return {
        "snapshot_time": stamp if stamp else received_at,
        "time_source": "exchange" if stamp else "local",
        "update_id": _int(payload.get("lastUpdateId")),
        "bids": bids,
        "asks": asks,
    }


def parse_bybit_orderbook(payload: object, where: str, received_at: int) -> dict:
    """Bybit v5 `result = {s, b, a, ts, u, seq, cts}`: the fields of an OrderBook."""
    try:
        result = payload["result"]  # type: ignore[index]
        bids, asks = result["b"], result["a"]
    except (TypeError, KeyError):
        raise MalformedResponse(f"{where}: response has no result.b / result.a") from None
    bids, asks = _levels(bids, "bids", where), _levels(asks, "asks", where)
    validate_book(bids, asks, where)
    stamp = _int(result.get("ts"))
    return {
        "snapshot_time": stamp if stamp else received_at,
        "time_source": "exchange" if stamp else "local",
        "update_id": _int(result.get("u")),
        "bids": bids,
        "asks": asks,
    }


PARSERS: dict[str, Callable[[object, str, int], dict]] = {
    "binance": parse_binance_depth,
    "bybit": parse_bybit_orderbook,
}


def fetch_order_book(
    client: ccxt.Exchange,
    market: dict,
    levels: int = DEFAULT_LEVELS,
    *,
    clock: Callable[[], int] = now_ms,
) -> OrderBook:
    """One snapshot of the top `levels` levels per side of `market` (spot or linear)."""
    kind = "spot" if market["spot"] else "linear"
    endpoint = market_data_spec(client.id).depth[kind]
    params = {"symbol": market["id"], "limit": request_limit(endpoint, levels)}
    if client.id == "bybit":
        params["category"] = kind
    where = f"{client.id} {kind} {market['symbol']} order book"
    parse = PARSERS[client.id]
    received: list[int] = []

    def check(payload: object) -> dict:
        received.append(clock())
        return parse(payload, where, received[-1])

    fields = call_endpoint(client, endpoint.method, params, what=where, check=check)
    return OrderBook(
        exchange=client.id,
        market=kind,
        symbol=market["symbol"],
        received_at=received[-1],
        **{**fields, "bids": fields["bids"][:levels], "asks": fields["asks"][:levels]},
    )


def book_table(book: OrderBook, ingested_at: int) -> pa.Table:
    """The snapshot as `orderbook_levels` rows: bids then asks, level 0 = best."""
    n_bid, n_ask = len(book.bids), len(book.asks)
    n = n_bid + n_ask
    prices = np.r_[book.bids[:, 0], book.asks[:, 0]]
    amounts = np.r_[book.bids[:, 1], book.asks[:, 1]]

    def times(ms: int) -> pa.Array:
        return pa.array(np.full(n, ms, dtype=np.int64)).cast(pa.timestamp("ms"))

    return pa.table(
        {
            "exchange": [book.exchange] * n,
            "market": [book.market] * n,
            "symbol": [book.symbol] * n,
            "snapshot_time": times(book.snapshot_time),
            "side": ["bid"] * n_bid + ["ask"] * n_ask,
            "level": pa.array(np.r_[np.arange(n_bid), np.arange(n_ask)], pa.int32()),
            "price": prices,
            "amount": amounts,
            "time_source": [book.time_source] * n,
            "source": [book.source] * n,
            "update_id": pa.array([book.update_id] * n, pa.int64()),
            "received_at": times(book.received_at),
            "ingested_at": times(ingested_at),
        },
        schema=ORDERBOOK_LEVELS.schema,
    )
