"""ccxt.pro order book streams: the clients, their sequence checks, and a bounded capture loop.

Binance's sequence is checked by ccxt (a break raises into the watcher, which resubscribes from
a fresh REST snapshot taken through the guarded call); Bybit's `u` is checked by `BybitStream`.
`capture()` watches one book until a deadline, reconnecting with backoff, and hands the top
levels to `on_snapshot` at the chosen cadence. Behaviour: docs/exchanges.md#order-book-streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import ccxt
import ccxt.pro as ccxtpro
import numpy as np

from vectorflow import interrupt
from vectorflow.errors import ExchangeUnavailable, MalformedResponse, TransientError
from vectorflow.exchanges.client import call_endpoint
from vectorflow.exchanges.orderbook import OrderBook, request_limit, validate_book
from vectorflow.exchanges.specs import exchange_spec, market_data_spec
from vectorflow.exchanges.urls import override_api_urls, override_ws_urls
from vectorflow.timeframes import now_ms

log = logging.getLogger(__name__)

BREAKER_KIND = "stream_orderbook"
BYBIT_TOPIC_DEPTHS = (50, 200)  # served for both spot and linear; a smaller depth is cut from 50
MAX_DEPTH = 200
STOP_CHECK_SECONDS = 1.0  # the capture looks for a stop (SIGINT, SIGTERM) at least this often


class _Counts:
    """Mixin: counts the depth messages each book received (`vf_updates`)."""

    vf_updates: int = 0

    def vf_count(self) -> None:
        self.vf_updates += 1


class BinanceStream(_Counts, ccxtpro.binance):
    """ccxt.pro Binance whose REST snapshots go through the guarded sync client `vf_sync`."""

    vf_sync = None
    vf_requests = 0

    def is_spot_url(self, client) -> bool:
        """By our spot URL, not by '/stream' in it, which a local or proxied URL may lack."""
        return client.url.startswith(self.urls["api"]["ws"]["spot"])

    def handle_order_book(self, client, message):
        """Count, then let ccxt apply (and sequence-check) the event."""
        self.vf_count()
        return super().handle_order_book(client, message)

    async def fetch_rest_order_book_safe(self, symbol, limit=None, params=None):
        """The snapshot ccxt syncs from, through breaker, rate limiter and retries."""
        market = self.market(symbol)
        kind = "spot" if market["spot"] else "linear"
        endpoint = market_data_spec("binance").depth[kind]
        wanted = request_limit(endpoint, min(limit or 1000, 1000))
        payload = await asyncio.to_thread(
            call_endpoint,
            self.vf_sync,
            endpoint.method,
            {"symbol": market["id"], "limit": wanted},
            what=f"{kind} {symbol} order book snapshot for the stream",
        )
        self.vf_requests += 1
        # the event time `E` (USDⓈ-M; spot sends none), as the stream's events carry
        book = self.parse_order_book(payload, symbol, self.safe_integer(payload, "E"))
        book["nonce"] = self.safe_integer(payload, "lastUpdateId")
        return book


class BybitStream(_Counts, ccxtpro.bybit):
    """ccxt.pro Bybit with the `u` continuity check ccxt lacks."""

    vf_last_u: dict | None = None
    vf_stale: set | None = None

    def _symbol_of(self, client, data: dict) -> str:
        kind = "spot" if "spot" in client.url else "contract"
        return self.safe_market(self.safe_string(data, "s"), None, None, kind)["symbol"]

    def handle_order_book(self, client, message):
        """Check `u` (+1 per delta; a snapshot resets it) before ccxt applies the message."""
        self.vf_count()
        last, stale = self.vf_last_u, self.vf_stale
        if last is None:
            last, stale = self.vf_last_u, self.vf_stale = {}, set()
        topic = self.safe_string(message, "topic", "")
        data = self.safe_dict(message, "data", {})
        u = self.safe_integer(data, "u")
        if self.safe_string(message, "type") == "snapshot":
            last[topic] = u
            stale.discard(topic)
            return super().handle_order_book(client, message)
        if topic in stale or topic not in last:
            return None  # waiting for a snapshot: a delta alone would corrupt the book
        if u is None or u != last[topic] + 1:
            stale.add(topic)
            symbol = self._symbol_of(client, data)
            self.orderbooks.pop(symbol, None)
            error = ccxt.InvalidNonce(f"bybit {topic}: update id {u} after {last[topic]}")
            client.reject(error, "orderbook:" + symbol)
            return None
        last[topic] = u
        return super().handle_order_book(client, message)

    def vf_update_id(self, topic: str) -> int | None:
        """The `u` of the last message applied to `topic`'s book."""
        return (self.vf_last_u or {}).get(topic)


CLASSES = {"binance": BinanceStream, "bybit": BybitStream}


def stream_client(exchange: str, settings, sync_client: ccxt.Exchange):
    """A ccxt.pro client for `exchange` at the configured URLs, sharing `sync_client`'s markets."""
    spec = exchange_spec(exchange)
    client = CLASSES[exchange]({"enableRateLimit": False, "options": dict(spec.ccxt_options)})
    endpoints = settings.endpoint(exchange)
    ws = client.urls["api"].get("ws")
    client.urls["api"] = override_api_urls(client.urls["api"], endpoints.url, endpoints.urls)
    client.urls["api"]["ws"] = override_ws_urls(ws, endpoints.ws_url)
    client.set_markets(list(sync_client.markets.values()))
    client.vf_sync = sync_client
    return client


async def stream_url(client, market: dict) -> str:
    """The WebSocket URL the client opens for `market`'s order book."""
    if client.id == "bybit":
        return await client.get_url_by_market_type(market["symbol"], False, "watchOrderBook", {})
    kind = "spot" if market["spot"] else "linear"
    return client.get_ws_url(kind, client.get_future_ws_category("depth"))


def watch_limit(exchange: str, depth: int) -> int | None:
    """The `limit` for watch_order_book: Bybit's topic depth; Binance: ccxt's 1000 snapshot."""
    if exchange == "bybit":
        return min(d for d in BYBIT_TOPIC_DEPTHS if d >= depth)
    return None


async def resync(client, market: dict, depth: int) -> None:
    """Ask for a fresh snapshot after a gap (Binance: watching again does it)."""
    if client.id != "bybit":
        return
    url = await stream_url(client, market)
    ws = client.clients.get(url)
    if ws is None or ws.closed():
        return  # a new connection starts with a snapshot anyway
    topic = f"orderbook.{watch_limit('bybit', depth)}.{market['id']}"
    await ws.send({"op": "unsubscribe", "req_id": client.request_id(), "args": [topic]})
    await ws.send({"op": "subscribe", "req_id": client.request_id(), "args": [topic]})


@dataclass
class CaptureStats:
    """What a capture saw."""

    updates: int = 0  # depth messages received
    resyncs: int = 0  # gaps or out-of-order updates, each followed by a fresh snapshot
    reconnects: int = 0  # connections lost (or refused) after the first, then tried again
    snapshots: int = 0  # snapshots handed over (written)
    rejected: int = 0  # snapshots not handed over: empty or crossed book
    requests: int = 0  # REST snapshot requests (Binance)
    connected: bool = False


def current_snapshot(client, market: dict, depth: int, kind: str) -> OrderBook | None:
    """The kept book's top `depth` levels, or None when it is not (yet) kept."""
    book = client.orderbooks.get(market["symbol"])
    if book is None:
        return None
    if client.id == "bybit":
        update_id = client.vf_update_id(f"orderbook.{watch_limit('bybit', depth)}.{market['id']}")
    else:
        update_id = book.get("nonce")
    stamp = book.get("timestamp")
    if update_id is None or stamp is None:
        return None
    bids = np.array([row[:2] for row in book["bids"][:depth]], dtype=np.float64).reshape(-1, 2)
    asks = np.array([row[:2] for row in book["asks"][:depth]], dtype=np.float64).reshape(-1, 2)
    validate_book(bids, asks, f"{client.id} {kind} {market['symbol']} stream")
    return OrderBook(
        exchange=client.id,
        market=kind,
        symbol=market["symbol"],
        snapshot_time=int(stamp),
        time_source="exchange",
        received_at=now_ms(),
        update_id=int(update_id),
        bids=bids,
        asks=asks,
        source="stream",
    )


async def capture(
    client,
    market: dict,
    *,
    seconds: float,
    depth: int,
    every_s: float,
    on_snapshot: Callable[[OrderBook], object],
    breakers=None,
    backoff: Callable[[int], float] = lambda n: min(0.25 * 2 ** (n - 1), 5.0),
    max_attempts: int = 5,
) -> CaptureStats:
    """Keep `market`'s book from its stream for `seconds`; snapshots every `every_s` seconds.

    Raises ExchangeUnavailable, naming the URL, when no connection could be made at all.
    """
    kind = "spot" if market["spot"] else "linear"
    symbol, limit = market["symbol"], watch_limit(client.id, depth)
    url = await stream_url(client, market)
    stats, started = CaptureStats(), time.monotonic()
    deadline, next_at = started + seconds, started
    synced, failures, admitted, watcher = False, 0, False, None
    try:
        while (now := time.monotonic()) < deadline:
            interrupt.check(f"{client.id} {kind} {symbol} capture")  # what was captured lands
            if not admitted and breakers is not None:
                breakers.admit(BREAKER_KIND, client.id)  # CircuitOpen: no connection attempted
            admitted = True
            # one watch stays pending across waits: cancelling it could lose a gap's rejection
            watcher = watcher or asyncio.ensure_future(client.watch_order_book(symbol, limit))
            wait = min((next_at if synced else deadline) - now, STOP_CHECK_SECONDS)
            await asyncio.wait({watcher}, timeout=max(wait, 0.001))
            if watcher.done():
                done, watcher = watcher, None
                try:
                    done.result()
                    if not synced and breakers is not None:
                        breakers.success(BREAKER_KIND, client.id)
                    synced, failures, stats.connected = True, 0, True
                except ccxt.InvalidNonce as exc:  # a gap or an out-of-order update
                    stats.resyncs += 1
                    synced = False
                    log.warning("%s %s %s: %s; resyncing from a fresh snapshot",
                                client.id, kind, symbol, exc)  # fmt: skip
                    await resync(client, market, depth)
                except (ccxt.NetworkError, TransientError) as exc:
                    synced, admitted = False, False
                    failures += 1
                    if breakers is not None:
                        breakers.failure(BREAKER_KIND, client.id, str(exc)[:200])
                    if not stats.connected and failures >= max_attempts:
                        break
                    stats.reconnects += stats.connected
                    pause = min(backoff(failures), max(deadline - time.monotonic(), 0))
                    log.warning(
                        "%s %s %s stream at %s: %s; reconnecting in %.2f s",
                        client.id, kind, symbol, url, exc, pause,
                    )  # fmt: skip
                    what = f"{client.id} {kind} {symbol}: reconnecting to the stream"
                    await asyncio.to_thread(interrupt.sleep, pause, what)
            if synced and time.monotonic() >= next_at:
                next_at = _take(client, market, depth, kind, stats, on_snapshot, next_at, every_s)
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    stats.updates = client.vf_updates
    stats.requests = getattr(client, "vf_requests", 0)
    if not stats.connected:
        raise ExchangeUnavailable(
            f"{client.id} {kind} {symbol}: could not connect to the order book stream at {url}"
            f" ({failures} attempts in {time.monotonic() - started:.1f} s)"
        )
    return stats


def _take(client, market, depth, kind, stats, on_snapshot, next_at: float, every_s: float) -> float:
    """Hand over one snapshot (unless the book did not change); returns the next time to."""
    try:
        snap = current_snapshot(client, market, depth, kind)
    except MalformedResponse as exc:
        stats.rejected += 1
        log.warning("%s; snapshot not written", exc)
        snap = None
    if snap is not None and snap.update_id != getattr(client, "vf_last_written", None):
        on_snapshot(snap)
        client.vf_last_written = snap.update_id
        stats.snapshots += 1
    now = time.monotonic()
    while next_at <= now:
        next_at += every_s
    return next_at
