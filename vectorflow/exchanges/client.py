"""ccxt clients pointed at the configured endpoints, with markets cached on disk.

Every request goes through `call_endpoint` (or `load_markets`), which runs it under the host's
circuit breakers, rate limiter and retry policy (`vectorflow.resilience`). ccxt's own limiter is
off: it is per object, in one process, and ignores the exchange's usage headers and Retry-After.
Clients record each HTTP response (status, headers, the start of the body) so that failures are
classified on facts, not on ccxt's exception class alone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ccxt

from vectorflow.errors import UnknownSymbol
from vectorflow.exchanges.classify import Response, classify_failure, translate_errors
from vectorflow.exchanges.specs import exchange_spec
from vectorflow.exchanges.urls import override_api_urls
from vectorflow.resilience.guard import guard_for
from vectorflow.resilience.target import Target
from vectorflow.settings import Settings

log = logging.getLogger(__name__)

_memo_lock = threading.Lock()
_markets_memo: dict[str, tuple[float, list[dict]]] = {}


class _RecordsResponses:
    """Mixin for a ccxt exchange class: appends each response to `vf_responses` while set."""

    vf_responses: list[Response] | None = None
    vf_guard = None

    def on_rest_response(self, code, reason, url, method, headers, body, *args):
        """ccxt's hook on every HTTP response; recorded, then handled as ccxt does."""
        if self.vf_responses is not None:
            self.vf_responses.append(Response(url, int(code), dict(headers or {}), body[:2000]))
        return super().on_rest_response(code, reason, url, method, headers, body, *args)


_recording_classes: dict[type, type] = {}


def _recording_class(cls: type) -> type:
    with _memo_lock:
        if cls not in _recording_classes:
            _recording_classes[cls] = type(cls.__name__, (_RecordsResponses, cls), {})
        return _recording_classes[cls]


@functools.cache
def exchange_target(exchange: str) -> Target:
    """`exchange` as the guard sees it: its failure table, rate budgets and minimum ban."""
    spec = exchange_spec(exchange)
    classify = functools.partial(classify_failure, spec.id)
    return Target(spec.id, classify, spec.budgets, spec.min_ban_seconds)


def new_exchange(exchange: str, settings: Settings) -> ccxt.Exchange:
    """A fresh sync ccxt exchange with its URL overrides, timeout and guard, no markets yet."""
    spec = exchange_spec(exchange)
    client = _recording_class(getattr(ccxt, spec.id))(
        {
            "enableRateLimit": False,  # the host-wide limiter of vectorflow.resilience instead
            "timeout": int(settings.request_timeout_seconds * 1000),
            "options": json.loads(json.dumps(spec.ccxt_options)),
        }
    )
    endpoints = settings.endpoint(exchange)
    client.urls["api"] = override_api_urls(client.urls["api"], endpoints.url, endpoints.urls)
    client.vf_guard = guard_for(settings)
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
            call_endpoint(client, "load_markets", {}, what="markets")
            markets = list(client.markets.values())
            _write_cache(path, markets)
            log.info("loaded %d markets from %s", len(markets), client.id)
        else:
            client.set_markets(markets)
        _markets_memo[key] = (time.time(), markets)


def call_endpoint(
    client: ccxt.Exchange,
    method: str,
    params: dict,
    *,
    what: str,
    check: Callable[[object], object] | None = None,
) -> object:
    """Call one raw ccxt endpoint method (or "load_markets"); the one call path of the pipeline.

    Runs under the circuit breaker of (the endpoint's kind, the exchange), the host's rate
    limiter and the retry policy; every failure comes out classified, its message naming `what`
    (exchange, market, symbol, timeframe) and the exchange's own words. `check(payload)` parses
    and validates the answer: a MalformedResponse from it retries the request once.
    """
    if method == "load_markets":
        request = functools.partial(client.load_markets, True)
    else:
        request = functools.partial(getattr(client, method), params)
    guard = getattr(client, "vf_guard", None)
    if guard is None:  # a client made outside `new_exchange`: one try, failures classified
        with translate_errors(client.id, f"{method} {what}"):
            return check(request()) if check is not None else request()

    def invoke(responses: list[Response]) -> object:
        client.vf_responses = responses  # filled by on_rest_response while the request runs
        try:
            return request()
        finally:
            client.vf_responses = None

    spec = exchange_spec(client.id)
    return guard.call(
        exchange_target(spec.id),
        invoke,
        kind=spec.endpoint(method).kind,
        what=f"{method} {what}",
        charges=spec.charges(method, params),
        check=check,
    )


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
