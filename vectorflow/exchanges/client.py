"""ccxt clients pointed at the configured endpoints, with markets cached on disk."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

import ccxt

from vectorflow.errors import UnknownSymbol
from vectorflow.exchanges.classify import translate_errors
from vectorflow.exchanges.specs import exchange_spec
from vectorflow.exchanges.urls import override_api_urls
from vectorflow.settings import Settings

log = logging.getLogger(__name__)

_memo_lock = threading.Lock()
_markets_memo: dict[str, tuple[float, list[dict]]] = {}


def new_exchange(exchange: str, settings: Settings) -> ccxt.Exchange:
    """A fresh sync ccxt exchange with its URL overrides and timeout, no markets yet."""
    spec = exchange_spec(exchange)
    client = getattr(ccxt, spec.id)(
        {
            "enableRateLimit": True,
            "timeout": int(settings.request_timeout_seconds * 1000),
            "options": json.loads(json.dumps(spec.ccxt_options)),
        }
    )
    endpoints = settings.endpoint(exchange)
    client.urls["api"] = override_api_urls(client.urls["api"], endpoints.url, endpoints.urls)
    return client


def _cache_key(client: ccxt.Exchange) -> str:
    urls = json.dumps(client.urls["api"], sort_keys=True, default=str)
    return f"{client.id}-{hashlib.sha256(urls.encode()).hexdigest()[:12]}"


def _read_cache(path: Path, max_age_s: float) -> list[dict] | None:
    try:
        if time.time() - path.stat().st_mtime > max_age_s:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_cache(path: Path, markets: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(markets), encoding="utf-8")
    os.replace(tmp, path)


def load_markets(client: ccxt.Exchange, settings: Settings) -> None:
    """Give `client` its markets: from this process's memo, the disk cache, or the exchange once."""
    key = _cache_key(client)
    max_age = settings.markets_cache_hours * 3600
    path = settings.cache_dir / f"markets-{key}.json"
    with _memo_lock:
        memo = _markets_memo.get(key)
        if memo and time.time() - memo[0] <= max_age:
            client.set_markets(memo[1])
            return
        markets = _read_cache(path, max_age)
        if markets is None:
            with translate_errors(client.id, "load_markets"):
                client.load_markets()
            markets = list(client.markets.values())
            _write_cache(path, markets)
            log.info("loaded %d markets from %s", len(markets), client.id)
        else:
            client.set_markets(markets)
        _markets_memo[key] = (time.time(), markets)


def call_endpoint(client: ccxt.Exchange, method: str, params: dict, *, what: str) -> object:
    """Call one raw ccxt endpoint method; every failure comes out classified (the one call path).

    Every exchange request of the pipeline goes through here, so rate limiting, retries and
    circuit breaking apply in one place.
    """
    with translate_errors(client.id, f"{method} {what}"):
        return getattr(client, method)(params)


def forget_markets() -> None:
    """Drop this process's in-memory markets (the disk cache stays); the next connect rereads it."""
    with _memo_lock:
        _markets_memo.clear()


def connect(exchange: str, settings: Settings) -> ccxt.Exchange:
    """A ready client for `exchange`: endpoints, timeout and markets (cached) set."""
    client = new_exchange(exchange, settings)
    load_markets(client, settings)
    return client


def market_of(client: ccxt.Exchange, symbol: str, market: str) -> dict:
    """The ccxt market of `symbol` in `market`; UnknownSymbol when the exchange does not list it."""
    found = client.markets.get(symbol)
    if found is None or found.get("type") != ("spot" if market == "spot" else "swap"):
        raise UnknownSymbol(f"{client.id} does not list {symbol!r} in its {market} market")
    if market == "linear" and not found.get("linear"):
        raise UnknownSymbol(f"{client.id}: {symbol!r} is not a linear perpetual")
    return found


def list_symbols(client: ccxt.Exchange, market: str) -> list[str]:
    """Active unified symbols of `market` (`spot` or `linear` perpetuals), sorted."""
    wanted = "spot" if market == "spot" else "swap"
    return sorted(
        m["symbol"]
        for m in client.markets.values()
        if m.get("type") == wanted
        and m.get("active") is not False
        and (market == "spot" or m.get("linear"))
    )
