"""The simulator's order book, open interest and funding endpoints: shapes, limits, weights."""

from __future__ import annotations

import pytest
import requests

DAY = 86_400_000


def _get(sim, path, **params):
    return requests.get(sim.url + path, params=params, timeout=10)


@pytest.mark.parametrize(
    ("path", "limit", "weight"),
    [
        ("/api/v3/depth", 100, 5),
        ("/api/v3/depth", 500, 25),
        ("/api/v3/depth", 1000, 50),
        ("/api/v3/depth", 5000, 250),
        ("/fapi/v1/depth", 50, 2),
        ("/fapi/v1/depth", 100, 5),
        ("/fapi/v1/depth", 500, 10),
        ("/fapi/v1/depth", 1000, 20),
    ],
)
def test_binance_depth_weights_and_levels(fresh_sim, path, limit, weight):
    answer = _get(fresh_sim, path, symbol="BTCUSDT", limit=limit)
    body = answer.json()
    assert answer.status_code == 200 and len(body["bids"]) == len(body["asks"]) == limit
    assert fresh_sim.requests[-1]["weight"] == weight
    assert int(answer.headers["X-MBX-USED-WEIGHT-1M"]) == weight
    assert ("T" in body and "E" in body) == path.startswith("/fapi")
    assert float(body["bids"][0][0]) < float(body["asks"][0][0])


def test_limits_outside_the_documented_ones_are_refused(sim):
    assert _get(sim, "/fapi/v1/depth", symbol="BTCUSDT", limit=7).json()["code"] == -1130
    assert _get(sim, "/api/v3/depth", symbol="BTCUSDT", limit=5001).json()["code"] == -1130
    bybit = _get(sim, "/v5/market/orderbook", category="spot", symbol="BTCUSDT", limit=1001)
    assert bybit.json()["retCode"] == 10001


def test_bybit_book_defaults_and_stamps(sim):
    spot = _get(sim, "/v5/market/orderbook", category="spot", symbol="BTCUSDT").json()["result"]
    linear = _get(sim, "/v5/market/orderbook", category="linear", symbol="BTCUSDT").json()
    assert len(spot["b"]) == 1 and len(linear["result"]["b"]) == 25  # the documented defaults
    result = linear["result"]
    assert {"s", "a", "b", "ts", "u", "seq", "cts"} <= set(result) and result["ts"] <= sim.now_ms()


def test_binance_open_interest_history_keeps_30_days(sim):
    now = sim.now_ms()
    old = _get(
        sim,
        "/futures/data/openInterestHist",
        symbol="BTCUSDT",
        period="1h",
        startTime=now - 31 * DAY,
    )
    assert old.status_code == 400 and old.json()["code"] == -1130
    recent = _get(sim, "/futures/data/openInterestHist", symbol="BTCUSDT", period="5m").json()
    assert len(recent) == 30  # default limit
    assert [r["timestamp"] for r in recent] == sorted(r["timestamp"] for r in recent)
    assert sim.requests[-1]["weight"] == 0


def test_bybit_open_interest_is_newest_first_to_the_listing(sim):
    listing = sim.listing_ms("NEWUSDT")
    pages, cursor = [], None
    while True:
        params = {"category": "linear", "symbol": "NEWUSDT", "intervalTime": "1h", "limit": 200}
        body = _get(
            sim, "/v5/market/open-interest", **params, **({"cursor": cursor} if cursor else {})
        )
        result = body.json()["result"]
        pages.append([int(r["timestamp"]) for r in result["list"]])
        cursor = result["nextPageCursor"]
        if not cursor:
            break
    times = [t for page in pages for t in page]
    assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
    assert min(times) == listing + 3_600_000 and len(pages) == 2  # 10 days of hours


def test_funding_endpoints(sim):
    only_start = _get(
        sim,
        "/v5/market/funding/history",
        category="linear",
        symbol="BTCUSDT",
        startTime=sim.now_ms() - DAY,
    )
    assert only_start.json()["retCode"] == 10001  # "startTime alone is an error"
    info = {
        r["symbol"]: r["fundingIntervalHours"] for r in _get(sim, "/fapi/v1/fundingInfo").json()
    }
    assert info == {"NEWUSDT": 4, "SOLUSDT": 4}  # the others have Binance's default 8 h
    rates = _get(sim, "/fapi/v1/fundingRate", symbol="BTCUSDT", limit=3).json()
    assert len(rates) == 3 and {"fundingTime", "fundingRate", "markPrice"} <= set(rates[0])
    instruments = _get(sim, "/v5/market/instruments-info", category="linear").json()
    intervals = {i["symbol"]: i["fundingInterval"] for i in instruments["result"]["list"]}
    assert intervals["SOLUSDT"] == intervals["NEWUSDT"] == 240 and intervals["BTCUSDT"] == 480
