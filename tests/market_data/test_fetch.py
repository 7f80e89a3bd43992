"""Fetching order books, open interest and funding from the simulator over sockets."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from tests.conftest import sim_settings
from vectorflow.errors import MalformedResponse
from vectorflow.exchanges.client import connect, market_of
from vectorflow.exchanges.funding import current_interval_hours, fetch_funding
from vectorflow.exchanges.open_interest import fetch_open_interest
from vectorflow.exchanges.orderbook import fetch_order_book
from vectorflow.lake.scan import snapshot_glob
from vectorflow.lake.schema import FUNDING_RATES
from vectorflow.pipelines.market_data import ingest_market_unit
from vectorflow.sim.derivatives import interval_change
from vectorflow.units import Unit

DAY = 86_400_000
HOUR = 3_600_000


def _client(sim, data_dir, exchange, symbol, market):
    client = connect(exchange, sim_settings(sim, data_dir))
    return client, market_of(client, symbol, market)


def _requests(sim, path):
    return [r for r in sim.requests if r["path"] == path]


def test_binance_open_interest_never_asks_beyond_its_30_day_horizon(fresh_sim, data_dir):
    client, market = _client(fresh_sim, data_dir, "binance", "BTC/USDT:USDT", "linear")
    now = fresh_sim.now_ms()
    pages = list(fetch_open_interest(client, market, "1h", now - 60 * DAY, now, clock=lambda: now))
    times = np.concatenate([p["time"] for p in pages])
    asked = _requests(fresh_sim, "/futures/data/openInterestHist")
    assert min(int(r["params"]["startTime"]) for r in asked) >= now - 30 * DAY
    assert all(r["status"] == 200 for r in asked)
    assert times[0] >= now - 30 * DAY and (np.diff(times) == HOUR).all()  # ascending, complete
    assert len(asked) == 2  # 30 days of hours in pages of 500
    assert (pages[0]["open_interest_value"] > 0).all()  # the exchange's quote value


def test_bybit_open_interest_pages_with_its_cursor_newest_first(fresh_sim, data_dir):
    client, market = _client(fresh_sim, data_dir, "bybit", "BTC/USDT:USDT", "linear")
    now = fresh_sim.now_ms()
    since = now // HOUR * HOUR - 500 * HOUR
    pages = list(fetch_open_interest(client, market, "1h", since, now, clock=lambda: now))
    asked = _requests(fresh_sim, "/v5/market/open-interest")
    assert len(asked) == 3 and "cursor" not in asked[0]["params"]
    assert all("cursor" in r["params"] for r in asked[1:])  # the next pages follow the cursor
    times = np.concatenate([p["time"] for p in pages])
    assert times.tolist() == list(range(since, now // HOUR * HOUR + 1, HOUR))  # 501, ascending


def test_bybit_funding_is_paged_back_with_start_and_end(fresh_sim, data_dir):
    client, market = _client(fresh_sim, data_dir, "bybit", "BTC/USDT:USDT", "linear")
    now = fresh_sim.now_ms()
    pages = list(fetch_funding(client, market, now - 100 * DAY, now))
    times = np.concatenate([p["funding_time"] for p in pages])
    asked = _requests(fresh_sim, "/v5/market/funding/history")
    assert len(asked) == 2  # 300 fundings, 200 a page
    assert all("endTime" in r["params"] for r in asked)  # startTime alone is an error on Bybit
    assert (np.diff(times) == 8 * HOUR).all() and len(times) == 300


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_funding_interval_changes_from_8_to_4_hours(fresh_sim, data_dir, exchange):
    settings = sim_settings(fresh_sim, data_dir)
    now = fresh_sim.now_ms()
    unit = Unit(exchange, "linear", "SOL/USDT:USDT", None, "funding_rates")
    ingest_market_unit(unit, now - 20 * DAY, now, settings, clock=fresh_sim.now_ms)
    rows = duckdb.sql(
        f"SELECT epoch_ms(funding_time), interval_hours FROM "
        f"read_parquet('{snapshot_glob(data_dir / 'lake', FUNDING_RATES)}') ORDER BY 1"
    ).fetchall()
    change = interval_change(fresh_sim.history)
    assert {h for t, h in rows if t // 1000 <= change // 1000} == {8.0}
    assert {h for t, h in rows if t // 1000 > change // 1000} == {4.0}
    after = [t for t, _ in rows if t // 1000 > change // 1000]
    assert (np.round(np.diff(after) / 1000) == 4 * 3600).all()  # the exchange's times: 4 h


@pytest.mark.parametrize(
    ("exchange", "market", "symbol", "source", "sent"),
    [
        ("binance", "spot", "BTC/USDT", "local", "30"),
        ("binance", "linear", "BTC/USDT:USDT", "exchange", "50"),
        ("bybit", "spot", "BTC/USDT", "exchange", "30"),
    ],
)
def test_order_book_levels_and_time_source(
    fresh_sim, data_dir, exchange, market, symbol, source, sent
):
    client, found = _client(fresh_sim, data_dir, exchange, symbol, market)
    book = fetch_order_book(client, found, 30, clock=fresh_sim.now_ms)
    assert book.time_source == source and len(book.bids) == len(book.asks) == 30
    assert book.bids[0, 0] < book.asks[0, 0]
    assert fresh_sim.requests[-1]["params"]["limit"] == sent
    if source == "local":
        assert book.snapshot_time == fresh_sim.now_ms()
    else:
        assert fresh_sim.now_ms() - 1000 < book.snapshot_time <= fresh_sim.now_ms()


def test_a_crossed_book_is_rejected_and_never_stored(fresh_sim, data_dir):
    crossed = {"lastUpdateId": 1, "E": 1, "T": 1, "bids": [["101", "1"]], "asks": [["100", "1"]]}
    fresh_sim.inject("/fapi/v1/depth", body=crossed, times=5)
    unit = Unit("binance", "linear", "BTC/USDT:USDT", None, "orderbook_levels")
    settings = sim_settings(fresh_sim, data_dir)
    with pytest.raises(MalformedResponse, match="crossed"):
        ingest_market_unit(unit, None, fresh_sim.now_ms(), settings, 100, clock=fresh_sim.now_ms)
    assert not list(data_dir.glob("lake/orderbook_levels/**/*.parquet"))


@pytest.mark.parametrize(
    ("exchange", "symbol", "hours"),
    [
        ("binance", "SOL/USDT:USDT", 4.0),  # listed by fundingInfo
        ("binance", "BTC/USDT:USDT", 8.0),  # not listed: Binance's default
        ("bybit", "SOL/USDT:USDT", 4.0),  # instruments-info fundingInterval 240 (minutes)
        ("bybit", "BTC/USDT:USDT", 8.0),
    ],
)
def test_the_current_funding_interval_comes_from_the_exchange(
    sim, data_dir, exchange, symbol, hours
):
    client, market = _client(sim, data_dir, exchange, symbol, "linear")
    assert current_interval_hours(client, market) == hours
