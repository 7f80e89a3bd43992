"""Each fault the simulator can inject, against the real ingest path over sockets.

Every transient fault ends with exactly the rows of a fault-free run, and the simulator's
request log shows what the client did: the failed page retried where it failed (same
parameters), no request before Retry-After or while banned, one extra try per failure. A
permanent error gets exactly one try.
"""

from __future__ import annotations

import pytest

from tests.resilience.conftest import BINANCE, BYBIT, KLINES
from vectorflow.errors import ExchangeUnavailable, MalformedResponse, PermanentError, UnknownSymbol
from vectorflow.timeframes import timeframe_ms

UNITS = {"binance": BINANCE, "bybit": BYBIT}

# (exchange, fault, extra kline requests it costs); every fault hits the 2nd page
TRANSIENT = {
    "429 + Retry-After": ("binance", dict(kind="rate_limit", retry_after=20), 1),
    "Bybit 429": ("bybit", dict(kind="rate_limit", retry_after=20), 1),
    "418 ban": ("binance", dict(kind="ban", retry_after=100), 1),
    "503 twice": ("binance", dict(kind="error", status=503, times=2), 2),
    "502": ("bybit", dict(kind="error", status=502), 1),
    "Binance -1008 on a 400": ("binance", dict(kind="error", status=400, code=-1008), 1),
    "Bybit 10016 twice": ("bybit", dict(kind="error", code=10016, times=2), 2),
    "Bybit 10006": ("bybit", dict(kind="error", code=10006), 1),
    "Bybit 10000": ("bybit", dict(kind="error", code=10000), 1),
    "slow past the timeout": ("binance", dict(kind="slow", delay=1.2), 1),
    "connection reset": ("bybit", dict(kind="reset"), 1),
    "garbage 200": ("binance", dict(kind="garbage"), 1),
    "truncated 200": ("bybit", dict(kind="truncated"), 1),
    "duplicated rows": ("binance", dict(kind="duplicate"), 0),
    "rows out of order": ("bybit", dict(kind="shuffle"), 0),
}


@pytest.mark.parametrize("name", TRANSIENT)
def test_transient_fault_ends_with_the_rows_of_a_fault_free_run(lab, baseline, name):
    exchange, fault, extra = TRANSIENT[name]
    settings = lab.settings(timeout=0.4)
    lab.sim.fault(path=KLINES[exchange], after=1, **fault)
    report = lab.ingest(UNITS[exchange], settings)

    assert report.status == "ok" and report.error is None
    assert lab.rows() == baseline["rows"][exchange]
    log = lab.klines(exchange)
    assert len(log) == baseline["requests"][exchange] + extra
    hit = [i for i, r in enumerate(log) if r["fault"]]
    assert hit == list(range(1, 1 + max(extra, 1)))
    if extra:  # the failed page is asked again, and only it: no page is fetched twice
        assert log[hit[-1] + 1]["params"] == log[1]["params"]
        assert len({tuple(sorted(r["params"].items())) for r in log}) == len(log) - extra
    wait = {"rate_limit": fault.get("retry_after"), "ban": 120}.get(fault["kind"])
    if wait:  # nothing reached the exchange before Retry-After / the end of the ban
        assert log[2]["wall"] - log[1]["wall"] >= wait * lab.scale
        assert [r["status"] for r in lab.sim.requests if r["exchange"] == exchange][-1] == 200


def test_bybit_403_stops_every_request_for_ten_minutes(lab, baseline):
    lab.sim.limits.time_scale = 0.002  # 10 minutes = 1.2 s
    settings = lab.settings()
    lab.sim.fault("ban", KLINES["bybit"], after=1)
    report = lab.ingest(BYBIT, settings)
    assert report.status == "ok" and lab.rows() == baseline["rows"]["bybit"]
    log = [r for r in lab.sim.requests if r["exchange"] == "bybit"]
    banned = next(i for i, r in enumerate(log) if r["status"] == 403)
    assert log[banned + 1]["wall"] - log[banned]["wall"] >= 600 * 0.002
    assert [r["status"] for r in log[banned + 1 :]] == [200] * (len(log) - banned - 1)


def test_missing_range_lands_everything_around_it_and_counts_the_gap(lab, baseline):
    step = timeframe_ms("15m")
    start = lab.since() + 1500 * step  # inside the second page
    lab.sim.fault("missing", KLINES["binance"], start=start, end=start + 40 * step)
    report = lab.ingest(BINANCE, lab.settings())
    expected = [r for r in baseline["rows"]["binance"] if not start <= r[4] < start + 40 * step]
    assert report.status == "ok" and report.detail["gaps"] == 40
    assert lab.rows() == expected
    assert len(lab.klines("binance")) <= baseline["requests"]["binance"]  # no page twice


# (exchange, fault, error class, words the message must hold, kline requests)
PERMANENT = {
    "unknown symbol": (
        "binance",
        dict(kind="error", status=400, code=-1121, message="Invalid symbol."),
        UnknownSymbol,
        "Invalid symbol.",
        2,
    ),
    "Bybit 10001": (
        "bybit",
        dict(kind="error", code=10001, message="params error: interval invalid"),
        PermanentError,
        "params error: interval invalid",
        2,
    ),
    "bad parameter": (
        "binance",
        dict(kind="error", status=400, code=-1100, message="Illegal characters in 'symbol'."),
        PermanentError,
        "Illegal characters in 'symbol'.",
        2,
    ),
    "malformed twice": ("binance", dict(kind="garbage", times=2), MalformedResponse, "twice", 3),
    "transient until retries run out": (
        "bybit",
        dict(kind="error", status=503, times=None),
        ExchangeUnavailable,
        "gave up after 3 tries",
        4,
    ),
}


@pytest.mark.parametrize("name", PERMANENT)
def test_permanent_error_fails_at_once_naming_what_failed(lab, name):
    exchange, fault, error, words, requests = PERMANENT[name]
    settings = lab.settings(retry_attempts=3)
    lab.sim.fault(path=KLINES[exchange], after=1, **fault)
    with pytest.raises(error) as failed:
        lab.ingest(UNITS[exchange], settings)
    message = " ".join([str(failed.value), *getattr(failed.value, "__notes__", [])])
    unit = UNITS[exchange]
    assert f"{unit.exchange} {unit.market} {unit.symbol} {unit.timeframe}" in message
    assert words in message
    assert "1000 rows landed before the failure" in message  # the first page stays
    assert len(lab.klines(exchange)) == requests
    assert len(lab.rows()) == 1000
