"""The error table on real ccxt failures from the simulator, where ccxt's class alone misleads."""

from __future__ import annotations

import ccxt
import pytest

from tests.resilience.conftest import KLINES
from vectorflow.errors import Banned, RateLimited
from vectorflow.exchanges.classify import ERRORS, RULES, Verdict, classify_failure
from vectorflow.exchanges.client import new_exchange

PARAMS = {
    "binance": {"symbol": "BTCUSDT", "interval": "1h", "limit": 5},
    "bybit": {"category": "linear", "symbol": "BTCUSDT", "interval": "60", "limit": 5},
}
METHODS = {"binance": "publicGetKlines", "bybit": "publicGetV5MarketKline"}

# (exchange, fault, the class ccxt raises, our verdict)
CASES = {
    "Binance 400, unlisted code": (
        "binance",
        dict(status=400, code=-1199),
        ccxt.ExchangeError,
        "permanent",
    ),
    "Binance 418": ("binance", dict(kind="ban"), ccxt.DDoSProtection, "banned"),
    "Binance 429": ("binance", dict(kind="rate_limit"), ccxt.DDoSProtection, "rate_limited"),
    "Binance -1008 on a 400": (
        "binance",
        dict(status=400, code=-1008),
        ccxt.ExchangeError,
        "transient",
    ),
    "Binance 503 page": ("binance", dict(status=503), ccxt.ExchangeNotAvailable, "transient"),
    "Binance 404 page": ("binance", dict(status=404), ccxt.ExchangeNotAvailable, "permanent"),
    "Binance 403 WAF": ("binance", dict(status=403), ccxt.ExchangeNotAvailable, "permanent"),
    "Bybit 10016": ("bybit", dict(code=10016), ccxt.ExchangeError, "transient"),
    "Bybit 10006": ("bybit", dict(code=10006), ccxt.RateLimitExceeded, "transient"),
    "Bybit 403": ("bybit", dict(kind="ban"), ccxt.RateLimitExceeded, "banned"),
    "Bybit 10001 symbol": (
        "bybit",
        dict(code=10001, message="Not supported symbols"),
        ccxt.BadRequest,
        "unknown_symbol",
    ),
    "Bybit 10001 other": (
        "bybit",
        dict(code=10001, message="params error"),
        ccxt.BadRequest,
        "permanent",
    ),
    "reset": ("bybit", dict(kind="reset"), ccxt.NetworkError, "transient"),
}


@pytest.mark.parametrize("name", CASES)
def test_each_failure_gets_the_verdict_of_its_facts_not_its_class(lab, name):
    exchange, fault, ccxt_class, verdict = CASES[name]
    client = new_exchange(exchange, lab.settings())
    lab.sim.fault(fault.pop("kind", "error"), KLINES[exchange], **fault)
    client.vf_responses = responses = []
    with pytest.raises(ccxt.BaseError) as raised:
        getattr(client, METHODS[exchange])(PARAMS[exchange])
    assert isinstance(raised.value, ccxt_class)  # what ccxt says...
    got, error, facts = classify_failure(exchange, raised.value, "x", (responses or [None])[-1])
    assert got == Verdict(verdict)  # ...and what it is
    assert isinstance(error, ERRORS[got])
    if isinstance(error, (RateLimited, Banned)) and exchange == "binance":
        assert error.retry_after == facts.retry_after == 1.0


def test_the_table_is_complete():
    assert set(ERRORS) == set(Verdict)
    assert {rule.verdict for rule in RULES} == set(Verdict)
    assert all(rule.why for rule in RULES)
