"""Raw kline paging, parsing and validation through real ccxt against the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import sim_settings
from vectorflow.errors import MalformedResponse, UnknownSymbol
from vectorflow.exchanges.client import connect, market_of
from vectorflow.exchanges.klines import FetchStats, fetch_closed_candles, validate
from vectorflow.timeframes import timeframe_ms

VENUES = [
    ("binance", "spot", "BTC/USDT"),
    ("binance", "linear", "BTC/USDT:USDT"),
    ("bybit", "spot", "BTC/USDT"),
    ("bybit", "linear", "BTC/USDT:USDT"),
]


def _collect(client, market, timeframe, since, until, **kw):
    pages = list(fetch_closed_candles(client, market, timeframe, since, until, **kw))
    return {k: np.concatenate([p[k] for p in pages]) for k in pages[0]} if pages else None


@pytest.mark.parametrize("exchange,market,symbol", VENUES)
def test_backfill_across_many_pages_is_complete_ordered_and_closed(
    sim, data_dir, exchange, market, symbol
):
    client = connect(exchange, sim_settings(sim, data_dir))
    info = market_of(client, symbol, market)
    first, last = sim.bundled_range("5m")
    stats = FetchStats()
    got = _collect(client, info, "5m", first, sim.now_ms(), stats=stats, clock=sim.now_ms)
    step = timeframe_ms("5m")
    expected = np.arange(first, sim.now_ms() - step + 1, step)  # every closed candle, no more
    assert np.array_equal(got["open_time"], expected)
    assert stats.requests == -(-(len(expected) + 1) // 1000)  # pages of 1000, open candle last
    assert (got["open_time"] + step <= sim.now_ms()).all()  # the open candle is never yielded
    assert stats.open_candles_dropped == 1
    has_trades = exchange == "binance"
    assert np.isfinite(got["trades"]).all() == has_trades
    assert np.isnan(got["taker_buy_volume"]).all() != has_trades
    assert (got["quote_volume"] > 0).all()


def test_binance_linear_5m_equals_the_bundled_real_candles(sim, data_dir):
    from importlib.resources import files

    import pandas as pd

    real = pd.read_parquet(files("vectorflow.sim") / "data" / "btc_usdt_5m.parquet")
    client = connect("binance", sim_settings(sim, data_dir))
    info = market_of(client, "BTC/USDT:USDT", "linear")
    first, last = sim.bundled_range("5m")
    got = _collect(client, info, "5m", first, last + 1, clock=sim.now_ms)
    assert len(got["open_time"]) == len(real)
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(got[column], real[column].to_numpy(), rtol=1e-12)


def test_range_is_half_open_on_open_time(sim, data_dir):
    client = connect("bybit", sim_settings(sim, data_dir))
    info = market_of(client, "BTC/USDT", "spot")
    first, _ = sim.bundled_range("1h")
    hour = timeframe_ms("1h")
    got = _collect(client, info, "1h", first + 1, first + 5 * hour, clock=sim.now_ms)
    # since first+1 ms is not an open time: the first candle is the next one; until is excluded
    assert list(got["open_time"]) == [first + k * hour for k in range(1, 5)]


def test_unknown_symbol_is_a_unit_error_naming_it(sim, data_dir):
    client = connect("bybit", sim_settings(sim, data_dir))
    with pytest.raises(UnknownSymbol, match="BNB/USDT"):
        market_of(client, "BNB/USDT", "spot")
    with pytest.raises(UnknownSymbol, match="BTC/USDT"):
        market_of(client, "BTC/USDT", "linear")  # listed, but not in that market


@pytest.mark.parametrize(
    "row,rule",
    [
        ([1, "100", "99", "98", "99", "1", 2, "100", 5, "0.5", "50", "0"], "high below"),
        ([1, "100", "101", "100.5", "100", "1", 2, "100", 5, "0.5", "50", "0"], "low above"),
        ([1, "100", "101", "99", "100", "-1", 2, "100", 5, "0.5", "50", "0"], "negative volume"),
        ([1, "100", "101", "99", "100", "1", 2, "100", 5, "2", "50", "0"], "taker-buy"),
        ([1, None, "101", "99", "100", "1", 2, "100", 5, "0.5", "50", "0"], "missing"),
        ([1, "x", "101", "99", "100", "1", 2, "100", 5, "0.5", "50", "0"], "not numeric"),
        ([61_000, "100", "101", "99", "100", "1", 2, "100", 5, "0.5", "50", "0"], "aligned"),
    ],
)
def test_validation_rejects_each_broken_rule(row, rule):
    from vectorflow.exchanges.klines import parse_binance

    row = list(row)
    if row[0] == 1:
        row[0] = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
    with pytest.raises(MalformedResponse, match=rule):
        validate(parse_binance([row], "test"), "1m", "test")


def test_malformed_page_is_an_error_and_nothing_after_it_is_yielded(fresh_sim, data_dir):
    client = connect("binance", sim_settings(fresh_sim, data_dir))
    info = market_of(client, "BTC/USDT", "spot")
    first, _ = fresh_sim.bundled_range("1m")
    # a malformed answer is retried once; failing validation twice is final
    fresh_sim.inject("/api/v3/klines", body=[[first, None, None, None, None]], times=2)
    fresh_sim.clear_requests()
    pages = fetch_closed_candles(
        client, info, "1m", first, fresh_sim.now_ms(), clock=fresh_sim.now_ms
    )
    with pytest.raises(MalformedResponse, match="binance spot BTC/USDT 1m") as failed:
        next(pages)
    assert "failed validation twice" in " ".join(failed.value.__notes__)
    assert len(fresh_sim.requests) == 2


def test_empty_window_stops_at_once(fresh_sim, data_dir):
    client = connect("binance", sim_settings(fresh_sim, data_dir))
    info = market_of(client, "BTC/USDT", "spot")
    stats = FetchStats()
    now = fresh_sim.now_ms()
    pages = list(
        fetch_closed_candles(
            client, info, "1h", now - 10_000, now, stats=stats, clock=fresh_sim.now_ms
        )
    )
    assert pages == [] and stats.requests <= 1
