"""The exchange simulator over real sockets with real ccxt: markets, klines, clock, faults."""

from __future__ import annotations

import socket
import time
from decimal import Decimal
from importlib.resources import files

import ccxt
import numpy as np
import pandas as pd
import pytest
import requests

from vectorflow.exchanges.urls import override_api_urls
from vectorflow.sim import ExchangeSimulator
from vectorflow.timeframes import floor_ms, now_ms, parse_time, timeframe_ms

NOW = "2025-03-05T10:17:42.500Z"  # mid-minute, mid-hour, a Wednesday
MIN, HOUR, DAY, WEEK = 60_000, 3_600_000, 86_400_000, 7 * 86_400_000
OPTIONS = {"fetchMarkets": {"types": ["spot", "linear"]}}


def _client(exchange: str, sim: ExchangeSimulator) -> ccxt.Exchange:
    client = getattr(ccxt, exchange)({"options": OPTIONS, "enableRateLimit": False})
    client.urls["api"] = override_api_urls(client.urls["api"], sim.url)
    return client


@pytest.fixture(scope="module")
def simulator():
    with ExchangeSimulator(now=NOW, seed=7) as server:
        yield server


@pytest.fixture
def own_sim():
    """A simulator of the test's own, for tests that read the log, inject or move the clock."""
    with ExchangeSimulator(now=NOW, seed=7) as server:
        yield server


@pytest.fixture(scope="module")
def binance(simulator):
    client = _client("binance", simulator)
    client.load_markets()
    return client


@pytest.fixture(scope="module")
def bybit(simulator):
    client = _client("bybit", simulator)
    client.load_markets()
    return client


def _rows(raw: list, exchange: str) -> dict[str, np.ndarray]:
    """Binance rows (oldest first) or Bybit rows (newest first) as ascending float columns."""
    rows = raw if exchange == "binance" else raw[::-1]
    cols = np.array([[float(x) for x in r[:6]] for r in rows]).reshape(-1, 6)
    return dict(zip(("t", "o", "h", "l", "c", "v"), cols.T, strict=True))


def _assert_ohlc(cols: dict[str, np.ndarray]) -> None:
    assert (cols["h"] >= np.maximum(cols["o"], cols["c"])).all()
    assert (np.minimum(cols["o"], cols["c"]) >= cols["l"]).all()
    assert (cols["l"] > 0).all() and (cols["v"] >= 0).all()


# ---------------------------------------------------------------- markets


def test_binance_load_markets_calls_two_paths_and_sets_listing_times(own_sim):
    client = _client("binance", own_sim)
    client.load_markets()
    paths = [r["path"] for r in own_sim.requests]
    assert paths == ["/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo"]
    assert set(own_sim.listed("binance", "spot")) <= set(client.markets)
    assert set(own_sim.listed("binance", "linear")) <= set(client.markets)
    perp = client.markets["BTC/USDT:USDT"]
    assert perp["swap"] and perp["linear"] and perp["settle"] == "USDT"
    assert perp["created"] == own_sim.listing_ms("BTCUSDT")
    assert perp["precision"]["price"] == 0.1 and perp["precision"]["amount"] == 0.001
    assert client.markets["BTC/USDT"]["precision"]["price"] == 0.01
    assert client.markets["BTC/USDT"]["created"] is None  # spot exchangeInfo has no listing time
    age = own_sim.now_ms() - client.markets["NEW/USDT:USDT"]["created"]
    assert 9 * DAY < age < 11 * DAY
    assert client.markets["BNB/USDT:USDT"]["active"]


def test_bybit_load_markets_and_listing(own_sim):
    client = _client("bybit", own_sim)
    client.load_markets()
    calls = [(r["path"], r["params"].get("category")) for r in own_sim.requests]
    assert calls == [("/v5/market/instruments-info", c) for c in ("spot", "linear", "linear")]
    assert "BNB/USDT" not in client.markets and "BNB/USDT:USDT" not in client.markets
    assert sorted(own_sim.listed("bybit", "spot") + own_sim.listed("bybit", "linear")) == sorted(
        client.markets
    )
    assert client.markets["NEW/USDT:USDT"]["created"] == own_sim.listing_ms("NEWUSDT")
    assert client.markets["ETH/USDT:USDT"]["precision"]["amount"] == 0.01


def test_bybit_linear_instruments_page_with_a_cursor(bybit):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"category": "linear", "limit": 2, **({"cursor": cursor} if cursor else {})}
        result = bybit.publicGetV5MarketInstrumentsInfo(params)["result"]
        seen += [i["symbol"] for i in result["list"]]
        pages += 1
        cursor = result["nextPageCursor"]
        if not cursor:
            break
    assert pages == 3
    assert seen == ["BTCUSDT", "ETHUSDT", "NEWUSDT", "SOLUSDT", "XRPUSDT"]


# ---------------------------------------------------------------- klines: shapes


def test_binance_rows_have_the_real_shape(binance, simulator):
    for method in (binance.publicGetKlines, binance.fapiPublicGetKlines):
        raw = method({"symbol": "ETHUSDT", "interval": "15m", "limit": 50})
        assert len(raw) == 50
        for row in raw:
            assert len(row) == 12 and isinstance(row[0], int) and isinstance(row[8], int)
            assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
            assert row[6] == row[0] + timeframe_ms("15m") - 1 and row[11] == "0"
            low, high, volume = float(row[3]), float(row[2]), float(row[5])
            assert 0 <= float(row[9]) <= volume
            assert low * volume * 0.999 <= float(row[7]) <= high * volume * 1.001


def test_bybit_rows_have_the_real_shape_newest_first(bybit, simulator):
    body = bybit.publicGetV5MarketKline(
        {"category": "spot", "symbol": "SOLUSDT", "interval": "60", "limit": 30}
    )
    assert body["retCode"] == 0 and body["retMsg"] == "OK" and body["retExtInfo"] == {}
    assert body["time"] == simulator.now_ms()
    assert body["result"]["category"] == "spot" and body["result"]["symbol"] == "SOLUSDT"
    rows = body["result"]["list"]
    assert len(rows) == 30 and all(len(r) == 7 and all(isinstance(x, str) for x in r) for r in rows)
    starts = [int(r[0]) for r in rows]
    assert starts == sorted(starts, reverse=True)
    assert starts[0] == floor_ms(simulator.now_ms(), "1h")  # the open candle comes first


@pytest.mark.parametrize(
    "exchange,symbol",
    [
        ("binance", "BTC/USDT"),
        ("binance", "BTC/USDT:USDT"),
        ("bybit", "BTC/USDT"),
        ("bybit", "BTC/USDT:USDT"),
    ],
)
def test_fetch_ohlcv_on_every_venue(binance, bybit, simulator, exchange, symbol):
    client = binance if exchange == "binance" else bybit
    since = floor_ms(simulator.now_ms(), "1h") - 10 * HOUR
    got = client.fetch_ohlcv(symbol, "1h", since=since, limit=5)
    assert [r[0] for r in got] == [since + k * HOUR for k in range(5)]
    reference = binance.fetch_ohlcv("BTC/USDT:USDT", "1h", since=since, limit=5)
    ratio = np.array([r[4] for r in got]) / np.array([r[4] for r in reference])
    assert np.all(np.abs(ratio - 1) < 0.002)  # the same market, a few bps apart
    if symbol != "BTC/USDT:USDT" or exchange != "binance":
        assert np.any(ratio != 1)  # ...but not identical: cross-venue spreads exist


# ---------------------------------------------------------------- klines: windows


def test_binance_window_rules(binance, simulator):
    now = simulator.now_ms()
    start = floor_ms(now, "5m") - 100 * 300_000
    first = binance.fapiPublicGetKlines(
        {"symbol": "XRPUSDT", "interval": "5m", "startTime": start, "limit": 10}
    )
    assert [r[0] for r in first] == [start + k * 300_000 for k in range(10)]
    end = start + 50 * 300_000 + 1
    last = binance.fapiPublicGetKlines(
        {"symbol": "XRPUSDT", "interval": "5m", "endTime": end, "limit": 10}
    )
    assert [r[0] for r in last] == [start + k * 300_000 for k in range(41, 51)]
    bounded = binance.fapiPublicGetKlines(
        {"symbol": "XRPUSDT", "interval": "5m", "startTime": start, "endTime": end, "limit": 1000}
    )
    assert len(bounded) == 51
    recent = binance.publicGetKlines({"symbol": "XRPUSDT", "interval": "5m", "limit": 3})
    assert recent[-1][0] == floor_ms(now, "5m")  # the open candle
    clamped = binance.publicGetKlines({"symbol": "XRPUSDT", "interval": "1m", "limit": 5000})
    assert len(clamped) == 1000  # spot clamps; futures refuses (see the error test)


def test_bybit_limit_rules_nearest_end_or_from_start(bybit, simulator):
    now = simulator.now_ms()
    start = floor_ms(now, "1h") - 300 * HOUR
    end = start + 99 * HOUR
    body = bybit.publicGetV5MarketKline(
        {
            "category": "linear",
            "symbol": "ETHUSDT",
            "interval": "60",
            "start": start,
            "end": end,
            "limit": 20,
        }
    )
    starts = [int(r[0]) for r in body["result"]["list"]]
    assert starts == [end - k * HOUR for k in range(20)]  # nearest `end`, newest first
    only_start = bybit.publicGetV5MarketKline(
        {"category": "linear", "symbol": "ETHUSDT", "interval": "60", "start": start, "limit": 5}
    )
    starts = [int(r[0]) for r in only_start["result"]["list"]]
    assert starts == [start + k * HOUR for k in range(4, -1, -1)]  # from start on, newest first
    latest = bybit.publicGetV5MarketKline(
        {"category": "linear", "symbol": "ETHUSDT", "interval": "60", "limit": 2}
    )
    assert int(latest["result"]["list"][0][0]) == floor_ms(now, "1h")  # the open candle


def test_new_listing_has_no_candles_before_it(binance, bybit, simulator):
    listed = simulator.listing_ms("NEWUSDT")
    raw = binance.fapiPublicGetKlines(
        {"symbol": "NEWUSDT", "interval": "1h", "startTime": 0, "limit": 3}
    )
    assert raw[0][0] == listed
    body = bybit.publicGetV5MarketKline(
        {
            "category": "spot",
            "symbol": "NEWUSDT",
            "interval": "60",
            "start": 0,
            "end": listed + 2 * HOUR,
            "limit": 1000,
        }
    )
    assert [int(r[0]) for r in body["result"]["list"]] == [listed + 2 * HOUR, listed + HOUR, listed]
    daily = binance.publicGetKlines({"symbol": "NEWUSDT", "interval": "1d", "startTime": 0})
    assert daily[0][0] == floor_ms(listed, "1d")  # a day candle opens at midnight, as on Binance


# ---------------------------------------------------------------- klines: data


def test_bundled_real_candles_are_served_exactly(binance, simulator):
    real = pd.read_parquet(files("vectorflow.sim") / "data" / "btc_usdt_5m.parquet")
    first, last = simulator.bundled_range("5m")
    assert (first - int(real["open_time"].iloc[0].value // 10**6)) % WEEK == 0
    rows, start = [], first
    while start <= last:
        page = binance.fapiPublicGetKlines(
            {
                "symbol": "BTCUSDT",
                "interval": "5m",
                "startTime": start,
                "endTime": last,
                "limit": 1500,
            }
        )
        rows += page
        start = page[-1][0] + 300_000
    got = _rows(rows, "binance")
    assert len(rows) == len(real) == 10_999
    assert np.array_equal(got["t"], np.arange(first, last + 1, 300_000))
    for key, column in zip("ohlcv", ("open", "high", "low", "close", "volume"), strict=True):
        assert np.array_equal(got[key], real[column].to_numpy()), column


def test_hour_candles_are_the_exact_aggregate_of_5m_candles(binance, simulator):
    start = floor_ms(simulator.now_ms(), "1d") - 3 * DAY
    hours = binance.publicGetKlines(
        {"symbol": "ETHUSDT", "interval": "1h", "startTime": start, "limit": 24}
    )
    fives = binance.publicGetKlines(
        {"symbol": "ETHUSDT", "interval": "5m", "startTime": start, "limit": 288}
    )
    for k, hour in enumerate(hours):
        part = fives[12 * k : 12 * k + 12]
        assert part[0][0] == hour[0]
        assert hour[1] == part[0][1] and hour[4] == part[-1][4]
        assert Decimal(hour[2]) == max(Decimal(r[2]) for r in part)
        assert Decimal(hour[3]) == min(Decimal(r[3]) for r in part)
        assert Decimal(hour[5]) == sum(Decimal(r[5]) for r in part)
        assert Decimal(hour[9]) == sum(Decimal(r[9]) for r in part)
        assert hour[8] == sum(r[8] for r in part)
        assert float(hour[7]) == pytest.approx(sum(float(r[7]) for r in part), rel=1e-9)
    weeks = binance.publicGetKlines({"symbol": "ETHUSDT", "interval": "1w", "limit": 10})
    assert all(pd.Timestamp(r[0], unit="ms").day_of_week == 0 for r in weeks)  # Mondays


@pytest.mark.parametrize(
    "exchange,market",
    [
        ("binance", "spot"),
        ("binance", "linear"),
        ("bybit", "spot"),
        ("bybit", "linear"),
    ],
)
def test_every_row_obeys_ohlc_rules_and_the_tick(binance, bybit, simulator, exchange, market):
    now = simulator.now_ms()
    client = binance if exchange == "binance" else bybit
    for symbol in simulator.listed(exchange, market):
        info = client.markets[symbol]
        tick = Decimal(str(info["precision"]["price"]))
        for tf, iv in (("1m", "1"), ("4h", "240"), ("1w", "W")):
            if exchange == "binance":
                method = client.publicGetKlines if market == "spot" else client.fapiPublicGetKlines
                raw = method({"symbol": info["id"], "interval": tf, "limit": 1000})
            else:
                raw = client.publicGetV5MarketKline(
                    {"category": market, "symbol": info["id"], "interval": iv, "limit": 1000}
                )["result"]["list"]
            cols = _rows(raw, exchange)
            _assert_ohlc(cols)
            prices = raw[0][1:5] + raw[-1][1:5]
            assert all(Decimal(p) % tick == 0 for p in prices), (symbol, prices)
            assert cols["t"][-1] <= now < cols["t"][-1] + timeframe_ms(tf)  # the open candle


def test_open_candle_is_partial_and_completes_later(own_sim):
    client = _client("binance", own_sim)
    now = own_sim.now_ms()
    params = {"symbol": "BTCUSDT", "interval": "1h", "limit": 2}
    open_row = client.fapiPublicGetKlines(params)[-1]
    assert open_row[0] <= now < open_row[0] + HOUR
    minute = client.fapiPublicGetKlines({"symbol": "BTCUSDT", "interval": "1m", "limit": 1})[-1]
    assert open_row[4] == minute[4]  # the close is the last price now
    own_sim.set_now(open_row[0] + HOUR)
    closed = client.fapiPublicGetKlines({**params, "endTime": open_row[0]})[-1]
    assert closed[0] == open_row[0]
    assert float(closed[5]) > float(open_row[5])  # more volume once the hour is over
    assert float(closed[2]) >= float(open_row[2]) and float(closed[3]) <= float(open_row[3])
    assert closed[1] == open_row[1]


# ---------------------------------------------------------------- errors, weights, faults


def test_unknown_symbol_and_bad_parameters_have_the_real_error_shapes(binance, bybit, own_sim):
    with pytest.raises(ccxt.BadSymbol, match='"code":-1121'):
        binance.fapiPublicGetKlines({"symbol": "FOOUSDT", "interval": "1m"})
    with pytest.raises(ccxt.BadRequest, match='"code":-1120'):
        binance.publicGetKlines({"symbol": "BTCUSDT", "interval": "7m"})
    with pytest.raises(ccxt.BadRequest, match='"code":-1130'):
        binance.fapiPublicGetKlines({"symbol": "BTCUSDT", "interval": "1m", "limit": 1501})
    with pytest.raises(ccxt.BadSymbol, match="Not supported symbols"):
        bybit.publicGetV5MarketKline({"category": "spot", "symbol": "BNBUSDT", "interval": "1"})
    with pytest.raises(ccxt.BadRequest, match="Invalid period!"):
        bybit.publicGetV5MarketKline({"category": "linear", "symbol": "BTCUSDT", "interval": "480"})
    raw = requests.get(
        f"{own_sim.url}/v5/market/kline",
        params={"category": "spot", "symbol": "BNBUSDT", "interval": "1"},
    )
    assert raw.status_code == 200 and raw.json()["retCode"] == 10001
    raw = requests.get(f"{own_sim.url}/api/v3/klines", params={"symbol": "BNB", "interval": "1m"})
    assert raw.status_code == 400 and raw.json() == {"code": -1121, "msg": "Invalid symbol."}
    raw = requests.get(f"{own_sim.url}/fapi/v1/premiumIndex")
    assert raw.status_code == 404 and raw.json()["code"] == -1020
    assert own_sim.requests[-1]["status"] == 404 and own_sim.requests[-1]["exchange"] == "binance"


def test_binance_weight_header_counts_per_api_and_minute(own_sim):
    session = requests.Session()

    def weight(path: str, **params) -> int:
        return int(session.get(own_sim.url + path, params=params).headers["X-MBX-USED-WEIGHT-1M"])

    assert weight("/api/v3/exchangeInfo") == 20
    assert weight("/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=1000) == 22
    assert weight("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=99) == 1
    assert weight("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1000) == 6
    assert weight("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1500) == 16
    assert weight("/fapi/v1/klines", symbol="FOOUSDT", interval="1m") == 21  # errors count too
    assert weight("/api/v3/klines", symbol="ETHUSDT", interval="1h") == 24
    own_sim.set_now(own_sim.now_ms() + MIN)
    assert weight("/fapi/v1/exchangeInfo") == 1  # a new minute
    assert [r["weight"] for r in own_sim.requests] == [20, 2, 1, 5, 10, 5, 2, 1]
    bybit = session.get(f"{own_sim.url}/v5/market/time")
    assert "X-MBX-USED-WEIGHT-1M" not in bybit.headers and own_sim.requests[-1]["weight"] == 1
    assert bybit.headers["Date"] and int(bybit.json()["time"]) == own_sim.now_ms()


def test_inject_answers_once_then_serves_normally(own_sim):
    client = _client("binance", own_sim)
    client.load_markets()
    params = {"symbol": "BTCUSDT", "interval": "1m", "limit": 2}
    own_sim.inject(
        "/api/v3/klines",
        status=429,
        body={"code": -1003, "msg": "Too many requests."},
        headers={"Retry-After": "7"},
    )
    with pytest.raises(ccxt.DDoSProtection):
        client.publicGetKlines(params)
    assert client.last_response_headers["Retry-After"] == "7"
    assert len(client.publicGetKlines(params)) == 2
    own_sim.inject("/v5/market/kline", body="not json", times=2)
    for _ in range(2):
        assert requests.get(f"{own_sim.url}/v5/market/kline").text == "not json"
    assert requests.get(f"{own_sim.url}/v5/market/kline").json()["retCode"] == 10001
    log = own_sim.requests
    assert [r["status"] for r in log[-5:]] == [429, 200, 200, 200, 200]
    assert log[-5]["params"] == {"symbol": "BTCUSDT", "interval": "1m", "limit": "2"}
    own_sim.clear_requests()
    assert own_sim.requests == []


# ---------------------------------------------------------------- clock, determinism, lifecycle


def test_real_clock_shifts_history_by_whole_weeks_to_end_in_the_last_week():
    with ExchangeSimulator(now=None) as sim:
        real_start = int(pd.Timestamp("2023-01-02 16:45", tz="UTC").value // 10**6)
        first, last = sim.bundled_range("5m")
        assert (first - real_start) % WEEK == 0
        assert now_ms() - WEEK < last + 300_000 <= now_ms()
        rows = requests.get(
            f"{sim.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 2}
        ).json()
        assert rows[-1][0] <= now_ms() < rows[-1][0] + 2 * MIN


def test_same_seed_same_candles_other_seed_other_candles():
    params = {"symbol": "SOLUSDT", "interval": "1d", "limit": 30}
    answers = []
    for seed in (7, 7, 8):
        with ExchangeSimulator(now=NOW, seed=seed) as sim:
            answers.append(requests.get(f"{sim.url}/api/v3/klines", params=params).json())
    assert answers[0] == answers[1] and answers[0] != answers[2]


def test_generation_and_paging_are_fast(own_sim):
    started = time.perf_counter()
    series = own_sim.history.series("bybit", "spot", "XRPUSDT")
    series.ensure(own_sim.now_ms() + MIN)
    generated = time.perf_counter() - started
    assert series.size >= 365 * 1440 and generated < 2.0
    session = requests.Session()
    params = {"symbol": "XRPUSDT", "interval": "1", "limit": 1000, "category": "spot"}
    session.get(f"{own_sim.url}/v5/market/kline", params=params)
    started = time.perf_counter()
    for _ in range(10):
        assert len(session.get(f"{own_sim.url}/v5/market/kline", params=params).content) > 50_000
    assert (time.perf_counter() - started) / 10 < 0.05


def test_stop_frees_the_port_and_set_now_accepts_iso():
    sim = ExchangeSimulator(now=NOW).start()
    port = sim.port
    assert requests.get(f"{sim.url}/api/v3/ping").json() == {}
    sim.set_now("2025-03-06T00:00:00Z")
    assert sim.now_ms() == parse_time("2025-03-06T00:00:00Z")
    sim.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
