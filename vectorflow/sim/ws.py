"""WebSocket order book streams of the simulator: Binance diff-depth and Bybit v5 orderbook.

`WsSimulator(rest_sim)` serves, on its own port and event loop (a daemon thread), Binance spot
at `/ws[/N]`, USDⓈ-M at `/public/ws[/N]` and Bybit at `/v5/public/{spot,linear}`, with books
evolving every `tick_ms` (`vectorflow.sim.livebook`); `true_book()` tells what the exchange held
at an update id or a time. Stream faults (`WsFault`): docs/exchanges.md#the-simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Self

from aiohttp import WSMsgType, web

from vectorflow.errors import InvalidInput
from vectorflow.sim import orderbook
from vectorflow.sim.livebook import LiveBook, diff, top
from vectorflow.sim.server import ExchangeSimulator

log = logging.getLogger(__name__)

WS_KINDS = ("drop", "gap", "swap", "disconnect")
BYBIT_DEPTHS = {"spot": (1, 50, 200, 1000), "linear": (1, 50, 200, 500)}
BINANCE_PATHS = {"ws": "spot", "public": "linear"}


@dataclass
class WsFault:
    """One scripted stream fault (the kinds: docs/exchanges.md#the-simulator)."""

    kind: str
    exchange: str | None = None
    market: str | None = None
    after: int = 0  # delta messages of a matching stream let through first
    times: int = 1  # drop: messages not sent; others: how often it fires
    size: int = 10  # gap: update ids skipped
    seen: int = field(default=0, repr=False)
    fired: int = field(default=0, repr=False)
    marks: list[int] = field(default_factory=list, repr=False)  # update ids where it acted

    def __post_init__(self) -> None:
        if self.kind not in WS_KINDS:
            expected = ", ".join(WS_KINDS)
            raise InvalidInput(f"unknown stream fault {self.kind!r}; expected {expected}")

    def hit(self, exchange: str, market: str) -> bool:
        """Count one delta message of a stream; True when this fault acts on it."""
        if (self.exchange or exchange) != exchange or (self.market or market) != market:
            return False
        self.seen += 1
        if self.seen > self.after and self.fired < self.times:
            self.fired += 1
            return True
        return False

    @classmethod
    def parse(cls, text: str) -> WsFault:
        """`KIND[:key=value,...]`, e.g. `gap:exchange=bybit,after=20`."""
        kind, _, options = text.partition(":")
        values: dict[str, object] = {"kind": kind.strip()}
        for item in filter(None, (o.strip() for o in options.split(","))):
            key, _, value = item.partition("=")
            if key in ("after", "times", "size") and value.isdigit():
                values[key] = int(value)
            elif key in ("exchange", "market"):
                values[key] = value
            else:
                raise InvalidInput(f"stream fault {text!r}: bad option {item!r}")
        return cls(**values)


@dataclass
class _Sub:
    """One stream of one connection: its book, depth (None: every level) and last view."""

    conn: _Conn
    book: LiveBook
    exchange: str
    market: str
    symbol: str
    depth: int | None
    topic: str
    view: tuple[list, list]
    held: str | None = None  # a delta held back by a `swap` fault


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    exchange: str
    market: str
    subs: dict[str, _Sub] = field(default_factory=dict)
    conn_id: str = ""


class WsSimulator:
    """Binance + Bybit order book WebSocket streams over the REST simulator's markets."""

    def __init__(
        self,
        rest: ExchangeSimulator,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tick_ms: int = 100,
        faults: list[WsFault] | tuple = (),
    ) -> None:
        self.rest, self.host, self.port, self.tick_ms = rest, host, port, tick_ms
        self.faults: list[WsFault] = list(faults)
        self.books: dict[tuple[str, str, str], LiveBook] = {}
        self.connections_opened: dict[str, int] = {"binance": 0, "bybit": 0}
        self._conns: set[_Conn] = set()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._tasks: list[asyncio.Task] = []
        self._t0 = rest.now_ms()
        self._m0 = time.monotonic()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Serve in a daemon thread; `url` is valid afterwards."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="vectorflow-ws-sim", daemon=True
        )
        self._thread.start()
        if not ready.wait(10) or self._runner is None:
            raise RuntimeError("the WebSocket simulator did not start")
        self.rest.live_depth = self._rest_depth
        log.debug("WebSocket simulator serving on %s", self.url)
        return self

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - port 0: the bound one
        ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        """Close every connection, stop the books and the loop."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self.rest.live_depth == self._rest_depth:
            self.rest.live_depth = None
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop.close()

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL such as ws://127.0.0.1:54321 (after start())."""
        return f"ws://{self.host}:{self.port}"

    def now_ms(self) -> int:
        """Exchange time of the streams: the REST simulator's clock at start, then wall time."""
        return self._t0 + int((time.monotonic() - self._m0) * 1000)

    def fault(self, kind: str, **options) -> WsFault:
        """Add a stream fault (see WsFault); returns it so a test can read `fired`."""
        added = WsFault(kind, **options)
        self.faults.append(added)
        return added

    # ------------------------------------------------------------------ the true book

    def true_book(
        self,
        exchange: str,
        market: str,
        symbol_id: str,
        *,
        update_id: int | None = None,
        at_ms: int | None = None,
        depth: int | None = None,
    ) -> tuple[int, list[tuple[float, float]], list[tuple[float, float]]]:
        """(update id, bids, asks) the exchange held at an update id or time (default: now)."""
        book = self.books[(exchange, market, symbol_id.upper())]
        v = book.version(update_id=update_id, at_ms=at_ms)

        def levels(side, bids):
            return [
                (float(book.price_text(p)), float(book.qty_text(q)))
                for p, q in top(side, depth, bids=bids)
            ]

        return v.update_id, levels(v.bids, True), levels(v.asks, False)

    def _book(self, exchange: str, market: str, symbol_id: str) -> LiveBook | None:
        key = (exchange, market, symbol_id)
        if key not in self.books:
            series = self.rest.history.series(exchange, market, symbol_id)
            if series is None:
                return None
            book = LiveBook(
                self.rest.history, series, self.now_ms(), id_step=3 if exchange == "binance" else 1
            )
            self.books[key] = book
            self._tasks.append(asyncio.get_running_loop().create_task(self._run_book(key, book)))
        return self.books[key]

    def _rest_depth(self, exchange: str, path: str, params: dict, now: int):
        """Binance REST depth of a streamed book (called from the REST server's threads)."""
        market = {"/api/v3/depth": "spot", "/fapi/v1/depth": "linear"}.get(path)
        book = self.books.get((exchange, market, params.get("symbol", "").upper()))
        if exchange != "binance" or book is None:
            return None
        spot = market == "spot"
        limit = orderbook._limit(params, orderbook.SPOT_DEFAULT if spot else orderbook.USDM_DEFAULT)  # noqa: SLF001
        if limit is None or (not spot and limit not in orderbook.USDM_LIMITS):
            return None  # the ordinary route answers the error
        weight = orderbook.spot_depth_weight(limit) if spot else orderbook.usdm_depth_weight(limit)
        update_id, stamp, bids, asks = book.view(limit)
        body: dict = {"lastUpdateId": update_id}
        if not spot:
            body |= {"E": stamp, "T": stamp - 1}
        return 200, body | {"bids": book.rows(bids), "asks": book.rows(asks)}, weight

    # ------------------------------------------------------------------ connections

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        parts = path.strip("/").split("/")
        if parts[:2] == ["v5", "public"] and len(parts) == 3 and parts[2] in BYBIT_DEPTHS:
            exchange, market = "bybit", parts[2]
        elif parts and parts[0] in BINANCE_PATHS and "ws" in parts[:2]:
            exchange, market = "binance", BINANCE_PATHS[parts[0]]
        else:
            return web.Response(status=404, text=f"no stream at {path}")
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        conn = _Conn(ws, exchange, market, conn_id=f"sim-{next(self._ids)}")
        self._conns.add(conn)
        self.connections_opened[exchange] += 1
        try:
            if exchange == "binance" and "@" in parts[-1]:  # /ws/btcusdt@depth@100ms
                await self._binance_subscribe(conn, parts[-1])
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    doc = json.loads(msg.data)
                except ValueError:
                    continue
                if exchange == "binance":
                    await self._binance_request(conn, doc)
                else:
                    await self._bybit_request(conn, doc)
        finally:
            self._conns.discard(conn)
        return ws

    async def _binance_request(self, conn: _Conn, doc: dict) -> None:
        method, rid = doc.get("method"), doc.get("id")
        params = doc.get("params") or []
        if method == "SUBSCRIBE":
            bad = [s for s in params if not await self._binance_subscribe(conn, s)]
            if bad:
                error = {"code": 2, "msg": f"Invalid request: {bad[0]}"}
                await _send(conn, {"error": error, "id": rid})
                return
            await _send(conn, {"result": None, "id": rid})
        elif method == "UNSUBSCRIBE":
            for stream in params:
                conn.subs.pop(stream, None)
            await _send(conn, {"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            await _send(conn, {"result": list(conn.subs), "id": rid})
        else:
            error = {"code": 2, "msg": f"Unknown method {method!r}"}
            await _send(conn, {"error": error, "id": rid})

    async def _binance_subscribe(self, conn: _Conn, stream: str) -> bool:
        symbol, _, kind = stream.partition("@")
        if not kind.startswith("depth"):
            return False
        book = self._book("binance", conn.market, symbol.upper())
        if book is None:
            return False
        _, _, bids, asks = book.view(None)
        conn.subs[stream] = _Sub(
            conn, book, "binance", conn.market, symbol.upper(), None, stream, (bids, asks)
        )
        return True

    async def _bybit_request(self, conn: _Conn, doc: dict) -> None:
        op, rid = doc.get("op"), doc.get("req_id", "")
        reply = {"success": True, "ret_msg": "", "conn_id": conn.conn_id, "req_id": rid, "op": op}
        if op == "ping":
            if conn.market == "spot":
                await _send(conn, reply | {"ret_msg": "pong"})
            else:
                await _send(conn, {"req_id": rid, "op": "pong", "args": [str(self.now_ms())],
                                   "conn_id": conn.conn_id})  # fmt: skip
            return
        if op == "unsubscribe":
            for topic in doc.get("args") or []:
                conn.subs.pop(topic, None)
            await _send(conn, reply)
            return
        if op != "subscribe":
            await _send(conn, reply | {"success": False, "ret_msg": f"unknown op {op!r}"})
            return
        topics = doc.get("args") or []
        for topic in topics:
            problem = self._bybit_check(conn, topic)
            if problem:
                await _send(conn, reply | {"success": False, "ret_msg": problem})
                return
        await _send(conn, reply)
        for topic in topics:
            await self._bybit_snapshot(conn, topic)

    def _bybit_check(self, conn: _Conn, topic: str) -> str | None:
        parts = topic.split(".")
        if len(parts) != 3 or parts[0] != "orderbook" or not parts[1].isdigit():
            return f"error:handler not found,topic:{topic}"
        if int(parts[1]) not in BYBIT_DEPTHS[conn.market]:
            return f"error:handler not found,topic:{topic}"
        if topic in conn.subs:
            return f"error:already subscribed,topic:{topic}"
        if self._book("bybit", conn.market, parts[2].upper()) is None:
            return f"error:handler not found,topic:{topic}"
        return None

    async def _bybit_snapshot(self, conn: _Conn, topic: str) -> None:
        _, depth, symbol = topic.split(".")
        book = self._book("bybit", conn.market, symbol.upper())
        update_id, stamp, bids, asks = book.view(int(depth))
        sub = _Sub(
            conn, book, "bybit", conn.market, symbol.upper(), int(depth), topic, (bids, asks)
        )
        conn.subs[topic] = sub
        await _send_text(conn, _bybit_message(sub, "snapshot", update_id, stamp, bids, asks))

    # ------------------------------------------------------------------ the books move

    async def _run_book(self, key: tuple[str, str, str], book: LiveBook) -> None:
        exchange, market, _ = key
        while True:
            await asyncio.sleep(self.tick_ms / 1000)
            gaps = [f for f in self.faults if f.kind == "gap" and f.hit(exchange, market)]
            first, last = book.advance(self.now_ms(), skip_ids=sum(f.size for f in gaps))
            for f in gaps:
                f.marks.append(first)
            for conn in list(self._conns):
                for sub in list(conn.subs.values()):
                    if sub.book is book:
                        await self._push(sub, first, last)

    async def _push(self, sub: _Sub, first: int, last: int) -> None:
        update_id, stamp, bids, asks = sub.book.view(sub.depth)
        changed = diff(sub.view, (bids, asks))
        sub.view = (bids, asks)
        if sub.exchange == "bybit":
            text = _bybit_message(sub, "delta", update_id, stamp, *changed)
        else:
            text = _binance_message(sub, first, last, stamp, *changed)
        acting = [f for f in self.faults if f.kind != "gap" and f.hit(sub.exchange, sub.market)]
        kinds = {f.kind for f in acting}
        for f in acting:
            f.marks.append(update_id if sub.exchange == "bybit" else last)
        if "disconnect" in kinds:
            log.info("stream fault: closing %s %s connection", sub.exchange, sub.market)
            await sub.conn.ws.close(code=1001, message=b"simulated disconnect")
            return
        if "drop" in kinds:
            return
        if "swap" in kinds and sub.held is None:
            sub.held = text
            return
        await _send_text(sub.conn, text)
        if sub.held is not None:
            held, sub.held = sub.held, None
            await _send_text(sub.conn, held)


def _bybit_message(sub: _Sub, kind: str, update_id: int, stamp: int, bids, asks) -> str:
    book = sub.book
    doc = {
        "topic": sub.topic,
        "type": kind,
        "ts": stamp,
        "data": {
            "s": sub.symbol,
            "b": book.rows(bids),
            "a": book.rows(asks),
            "u": update_id,
            "seq": update_id * 7 + 1_000_000,
        },
        "cts": stamp - 2,
    }
    return json.dumps(doc, separators=(",", ":"))


def _binance_message(sub: _Sub, first: int, last: int, stamp: int, bids, asks) -> str:
    book = sub.book
    doc = {"e": "depthUpdate", "E": stamp}
    if sub.market == "linear":
        doc["T"] = stamp - 1
    doc |= {"s": sub.symbol, "U": first, "u": last}
    if sub.market == "linear":
        doc["pu"] = first - 1
    doc |= {"b": book.rows(bids), "a": book.rows(asks)}
    return json.dumps(doc, separators=(",", ":"))


async def _send(conn: _Conn, doc: dict) -> None:
    await _send_text(conn, json.dumps(doc, separators=(",", ":")))


async def _send_text(conn: _Conn, text: str) -> None:
    if conn.ws.closed:
        return
    with contextlib.suppress(ConnectionError, RuntimeError):
        await conn.ws.send_str(text)
