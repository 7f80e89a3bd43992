"""The exchange's clock: what "now" is where the data comes from.

Planning a window relative to now (Binance's 30-day open interest horizon, a first run's
default start, a backfill's expected candles) uses the exchange's time, asked once per client
through its time endpoint, never later than the local clock: a local clock running ahead
would ask for times the exchange cannot serve yet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import ccxt

from vectorflow.errors import MalformedResponse
from vectorflow.exchanges.client import call_endpoint
from vectorflow.timeframes import now_ms

TIME_METHODS = {"binance": "fapiPublicGetTime", "bybit": "publicGetV5MarketTime"}
_lock = threading.Lock()


def parse_server_time(payload: object, where: str) -> int:
    """Binance `{"serverTime": ms}` or Bybit's envelope `{"time": ms, ...}`: the time in ms."""
    if isinstance(payload, dict):
        for key in ("serverTime", "time"):
            if isinstance(payload.get(key), (int, float)):
                return int(payload[key])
    raise MalformedResponse(f"{where}: no server time in {str(payload)[:200]}")


def exchange_clock(client: ccxt.Exchange, clock: Callable[[], int] = now_ms) -> Callable[[], int]:
    """A clock following the exchange's (one request per client, then an offset)."""
    with _lock:
        offset = getattr(client, "vf_clock_offset", None)
    if offset is None:
        where = f"{client.id} server time"
        server = call_endpoint(
            client,
            TIME_METHODS[client.id],
            {},
            what=where,
            check=lambda p: parse_server_time(p, where),
        )
        offset = min(server - clock(), 0)
        with _lock:
            client.vf_clock_offset = offset
    return lambda: clock() + offset
