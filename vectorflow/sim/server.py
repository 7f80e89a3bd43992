"""The local exchange simulator: one HTTP server speaking Binance spot + USDⓈ-M and Bybit v5 REST.

Point a real ccxt object at it with
`ex.urls['api'] = override_api_urls(ex.urls['api'], sim.url)`.

Faults (`fault()`, see `faults.py`) and the exchanges' real budgets and bans (`limits.py`, on
with `enforce_limits=True`) are scriptable; every request is logged with its data-clock time,
its wall-clock time, its weight and the fault that answered it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qsl, urlsplit

from vectorflow.errors import InvalidInput
from vectorflow.sim import binance, bybit, derivatives, orderbook, venues
from vectorflow.sim.faults import BEFORE_ROUTE, Fault, canned, transform
from vectorflow.sim.limits import Limits
from vectorflow.sim.series import History
from vectorflow.timeframes import now_ms as real_now_ms
from vectorflow.timeframes import parse_time, timeframe_ms
from vectorflow.values import port_in_use

log = logging.getLogger(__name__)

# order books, open interest and funding: vectorflow.sim.orderbook / derivatives
BINANCE_ROUTES = {**binance.ROUTES, **orderbook.BINANCE_ROUTES, **derivatives.BINANCE_ROUTES}
BYBIT_ROUTES = {**bybit.ROUTES, **orderbook.BYBIT_ROUTES, **derivatives.BYBIT_ROUTES}

MARKET_ALIASES = {"spot": "spot", "linear": "linear", "swap": "linear"}


class _Injection:
    """A canned answer for the next `times` requests to one path."""

    def __init__(self, status: int, body: object, headers: dict | None, times: int, delay: float):
        self.status, self.headers, self.left, self.delay = status, dict(headers or {}), times, delay
        self.body = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vectorflow-sim"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this many seconds

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold every small answer back by about 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connections.discard(self.connection)

    def do_GET(self) -> None:
        self.server.simulator._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.simulator._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.simulator._handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.simulator._handle(self, "DELETE")

    def log_message(self, format: str, *args) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, simulator) -> None:
        self.simulator = simulator
        self.connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (timed out, was reset by a fault) is expected: logged quietly."""
        log.debug("connection from %s ended abruptly", client_address, exc_info=True)


class LoopbackService:
    """A local HTTP server in a daemon thread, used as `with Service(...) as s:` or start/stop.

    Subclasses set `host`, `port` and `thread_name`, and handle requests (`_handle`).
    """

    host: str
    port: int
    thread_name = "vectorflow-loopback"
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind and serve in a daemon thread; `url` is valid afterwards."""
        if self._server is None:
            try:
                self._server = _Server((self.host, self.port), self)
            except OSError as exc:  # in use, or not ours to bind: the user chose another port
                raise port_in_use(self.host, self.port, exc) from None
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"{self.thread_name}:{self.port}",
                daemon=True,
            )
            self._thread.start()
            log.debug("%s serving on port %d", self.thread_name, self.port)
        return self

    def stop(self) -> None:
        """Stop serving, close open keep-alive connections and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        for conn in list(server.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ExchangeSimulator(LoopbackService):
    """Local Binance + Bybit REST simulator serving deterministic candles over HTTP."""

    thread_name = "vectorflow-sim"

    def __init__(
        self,
        now: int | str | None = None,
        seed: int = 7,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        time_scale: float = 1.0,
        enforce_limits: bool = False,
        faults: Iterable[Fault] = (),
    ) -> None:
        self.seed, self.host, self.port = seed, host, port
        self.limits = Limits(time_scale=time_scale, enforce=enforce_limits)
        self._faults: list[Fault] = list(faults)
        self._pinned = None if now is None else parse_time(now, name="now")
        self.history = History(seed, self.now_ms())
        self._lock = threading.Lock()
        self._log: list[dict] = []
        self._injections: dict[str, list[_Injection]] = {}
        # set by a running WsSimulator: Binance depth of a streamed book comes from its live book
        self.live_depth = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL such as http://127.0.0.1:54321 (after start())."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ clock and data

    def now_ms(self) -> int:
        """The simulator's current time: the pinned value, or the real clock."""
        pinned = self._pinned
        return real_now_ms() if pinned is None else pinned

    def set_now(self, ms: int | str) -> None:
        """Pin the clock to `ms` (ms or ISO string); history stays anchored where it was created."""
        self._pinned = parse_time(ms, name="now")

    def bundled_range(self, timeframe: str) -> tuple[int, int]:
        """(first, last) open ms of the `timeframe` candles made only of shifted real candles."""
        timeframe_ms(timeframe)  # InvalidInput for an unknown timeframe
        return self.history.bundled_range(timeframe)

    def listed(self, exchange: str, market: str) -> list[str]:
        """Unified symbols on a venue: listed('bybit', 'linear') -> ['BTC/USDT:USDT', ...]."""
        kind = MARKET_ALIASES.get(market)
        if exchange not in ("binance", "bybit") or kind is None:
            raise InvalidInput(f"unknown venue {exchange!r} {market!r}")
        return [venues.unified(venues.SYMBOLS[i], kind) for i in venues.listed_ids(exchange, kind)]

    def listing_ms(self, symbol_id: str) -> int:
        """Listing time (onboardDate / launchTime, first 1m candle) of an id such as NEWUSDT."""
        return self.history.listing[symbol_id]

    # ------------------------------------------------------------------ request log and faults

    @property
    def requests(self) -> list[dict]:
        """Snapshot of the request log: {time_ms, exchange, path, params, status, weight} each."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._log.clear()

    def inject(
        self,
        path: str,
        *,
        status: int = 200,
        body: object = "",
        headers: dict | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests to `path` with this raw response (body str, or JSON).

        `delay` (seconds) holds the answer back, for timeout tests. Injected answers carry no weight
        header unless given in `headers`, and count weight 0.
        """
        with self._lock:
            self._injections.setdefault(path, []).append(
                _Injection(status, body, headers, times, delay)
            )

    def _take_injection(self, path: str) -> _Injection | None:
        with self._lock:
            queue = self._injections.get(path)
            if not queue:
                return None
            injection = queue[0]
            injection.left -= 1
            if injection.left <= 0:
                queue.pop(0)
            return injection

    def fault(self, kind: str, path: str | None = None, **options) -> Fault:
        """Script a fault (kinds and options: `vectorflow.sim.faults`); returns it."""
        made = Fault(kind, path, **options)
        with self._lock:
            self._faults.append(made)
        return made

    def clear_faults(self) -> None:
        """Drop every scripted fault and ban."""
        with self._lock:
            self._faults.clear()
        self.limits = Limits(time_scale=self.limits.time_scale, enforce=self.limits.enforce)

    def _take_fault(self, exchange: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(exchange, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
            return None

    def window_use(self, budget: str) -> dict[int, int]:
        """Weight (or requests) the simulator accepted per fixed window of `budget`."""
        return self.limits.window_use(self.requests, budget)

    # ------------------------------------------------------------------ request handling

    def _handle(self, handler: _Handler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        parts = urlsplit(handler.path)
        path, params = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
        now = self.now_ms()
        exchange = _exchange_of(path)
        injection = self._take_injection(path)
        if injection is not None:
            if injection.delay:
                time.sleep(injection.delay)
            self._record(now, exchange, path, params, injection.status, 0, "inject")
            self._send(handler, injection.status, injection.body, injection.headers, now)
            return
        fault = None if self.limits.is_banned(exchange) else self._take_fault(exchange, path)
        if fault is not None and fault.kind in BEFORE_ROUTE:
            self._answer_fault(handler, fault, exchange, path, params, now)
            return
        status, body, weight = self._route(exchange, method, path, params, now)
        refusal, headers = self.limits.admit(exchange, path, weight, now // 60_000)
        text = _text(body)
        if refusal is not None:
            (status, text, more), weight, fault = refusal, 0, None
            headers.update(more)
        elif fault is not None:
            rerun = lambda p: _text(self._route(exchange, method, path, p, now)[1])  # noqa: E731
            text = transform(fault, exchange, path, params, text, rerun)
        if exchange == "binance" and binance.weight_group(path) == "spot" and headers:
            headers["X-MBX-USED-WEIGHT"] = headers["X-MBX-USED-WEIGHT-1M"]
        self._record(now, exchange, path, params, status, weight, fault and fault.kind)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)  # logged on arrival, answered late
        self._send(handler, status, text, headers, now)

    def _answer_fault(self, handler, fault: Fault, exchange, path, params, now: int) -> None:
        """Answer a request with a fault instead of the real answer (or reset the connection)."""
        if fault.kind == "reset":
            self._record(now, exchange, path, params, 0, 0, fault.kind)
            handler.close_connection = True
            sock = handler.connection
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # SO_LINGER 0: the peer sees a reset, not an orderly close
            return
        status, text, headers = canned(fault, exchange, now)
        if fault.kind == "ban":
            self.limits.ban(exchange, fault.ban_seconds(exchange), status, text)
        self._record(now, exchange, path, params, status, 0, fault.kind)
        self._send(handler, status, text, headers, now)

    def _route(
        self, exchange: str, method: str, path: str, params: dict[str, str], now: int
    ) -> tuple[int, object, int]:
        routes = {"binance": BINANCE_ROUTES, "bybit": BYBIT_ROUTES}.get(exchange, {})
        fn = routes.get(path) if method == "GET" else None
        live = self.live_depth
        if fn is not None and live is not None:
            reply = live(exchange, path, params, now)
            if reply is not None:
                return reply
        if fn is not None:
            try:
                return fn(self.history, params, now)
            except Exception:  # a simulator bug must not kill the connection silently
                log.exception("simulator failed on %s %s", path, params)
                return 500, {"code": -1000, "msg": "simulator internal error"}, 0
        log.warning("simulator: no route for %s %s (%s); answering 404", method, path, exchange)
        if exchange == "binance":
            return binance.not_found(path)
        if exchange == "bybit":
            return bybit.not_found(path, now)
        return 404, {"error": f"unknown path {path}"}, 0

    def _record(
        self,
        now: int,
        exchange: str,
        path: str,
        params: dict,
        status: int,
        weight: int,
        fault: str | None = None,
    ) -> None:
        entry = {
            "time_ms": now,
            "wall": time.time(),
            "exchange": exchange,
            "path": path,
            "params": params,
            "status": status,
            "weight": weight,
            "fault": fault,
        }
        with self._lock:
            self._log.append(entry)

    @staticmethod
    def _send(handler: _Handler, status: int, text: str, headers: dict, now: int) -> None:
        data = text.encode("utf-8")
        handler.send_response_only(status)
        handler.send_header("Content-Type", "application/json;charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Date", formatdate(now / 1000, usegmt=True))
        for key, value in headers.items():
            handler.send_header(key, str(value))
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()


def _exchange_of(path: str) -> str:
    """'binance' or 'bybit' by path prefix ('unknown' for neither)."""
    if path.startswith(binance.PREFIXES):
        return "binance"
    if path.startswith(bybit.PREFIXES):
        return "bybit"
    return "unknown"


def _text(body: object) -> str:
    return body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))


def serve(
    host: str = "127.0.0.1",
    port: int = 8900,
    now: int | str | None = None,
    *,
    time_scale: float = 1.0,
    enforce_limits: bool = False,
    faults: Iterable[Fault] = (),
    ws_port: int | None = None,
    ws_faults: Iterable = (),
) -> None:
    """Run a simulator in the foreground until interrupted (for `vectorflow sim --port N`).

    With `ws_port`, the order book WebSocket streams (`vectorflow.sim.ws`) are served too.
    """
    sim = ExchangeSimulator(
        now=now,
        host=host,
        port=port,
        time_scale=time_scale,
        enforce_limits=enforce_limits,
        faults=faults,
    ).start()
    log.info("exchange simulator (Binance spot + USDⓈ-M, Bybit v5) listening on %s", sim.url)
    streams = None
    if ws_port is not None:
        from vectorflow.sim.ws import WsSimulator  # it imports this module

        streams = WsSimulator(sim, host=host, port=ws_port, faults=list(ws_faults)).start()
        log.info("order book WebSocket streams listening on %s", streams.url)
    if enforce_limits or faults:
        log.info("limits %s, time scale %g, faults %s", enforce_limits, time_scale, faults)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        log.info("exchange simulator stopping")
    finally:
        if streams is not None:
            streams.stop()
        sim.stop()
