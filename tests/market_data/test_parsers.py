"""Each dataset's parsing for both exchanges, from the exchanges' documented example responses.

Expected values are read off the example files by eye (vectorflow/sim/data/examples/), not
recomputed by the code under test.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from vectorflow.errors import MalformedResponse
from vectorflow.exchanges.funding import (
    interval_hours,
    parse_binance_funding,
    parse_binance_funding_info,
    parse_bybit_funding,
)
from vectorflow.exchanges.open_interest import (
    parse_binance_oi_hist,
    parse_binance_oi_now,
    parse_bybit_oi,
)
from vectorflow.exchanges.orderbook import (
    OrderBook,
    book_table,
    parse_binance_depth,
    parse_bybit_orderbook,
    request_limit,
)
from vectorflow.exchanges.specs import market_data_spec

RECEIVED = 1_700_000_000_123  # the local receive time handed to the parsers
HOUR = 3_600_000


def example(name: str) -> object:
    path = resources.files("vectorflow.sim") / "data" / "examples" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_binance_spot_depth_has_no_exchange_time_so_the_receive_time_is_used():
    book = parse_binance_depth(example("binance_spot_depth"), "t", RECEIVED)
    assert book["time_source"] == "local" and book["snapshot_time"] == RECEIVED
    assert book["update_id"] == 1027024
    assert book["bids"].tolist() == [[4.0, 431.0]]
    assert book["asks"].tolist() == [[4.000002, 12.0]]


def test_binance_usdm_depth_uses_the_transaction_time_t_not_the_event_time_e():
    book = parse_binance_depth(example("binance_usdm_depth"), "t", RECEIVED)
    assert book["time_source"] == "exchange"
    assert book["snapshot_time"] == 1589436922959  # T; E is 1589436922972


def test_bybit_orderbook_uses_ts_and_u():
    book = parse_bybit_orderbook(example("bybit_orderbook"), "t", RECEIVED)
    assert book["time_source"] == "exchange" and book["snapshot_time"] == 1716863719031
    assert book["update_id"] == 230704
    assert book["bids"].tolist() == [[65485.47, 47.081829]]
    assert book["asks"].tolist() == [[65557.7, 16.606555]]


@pytest.mark.parametrize(
    ("name", "parse", "side"),
    [
        ("binance_usdm_depth", parse_binance_depth, None),
        ("bybit_orderbook", parse_bybit_orderbook, "result"),
    ],
)
def test_crossed_and_empty_books_are_rejected(name, parse, side):
    crossed = example(name)
    target = crossed[side] if side else crossed
    bid_key, ask_key = ("b", "a") if side else ("bids", "asks")
    target[bid_key] = [["70000", "1"]]  # above the best ask of either example
    with pytest.raises(MalformedResponse, match="crossed book"):
        parse(crossed, "t", RECEIVED)
    empty = example(name)
    (empty[side] if side else empty)[ask_key] = []
    with pytest.raises(MalformedResponse, match="empty book"):
        parse(empty, "t", RECEIVED)


def test_levels_out_of_order_are_rejected():
    book = example("binance_usdm_depth")
    book["bids"] = [["3.9", "1"], ["3.95", "1"]]
    with pytest.raises(MalformedResponse, match="not strictly descending"):
        parse_binance_depth(book, "t", RECEIVED)


def test_book_rows_put_level_zero_at_the_best_price():
    fields = parse_bybit_orderbook(example("bybit_orderbook"), "t", RECEIVED)
    fields["bids"] = np.array([[100.0, 1.0], [99.0, 2.0]])
    book = OrderBook("bybit", "linear", "BTC/USDT:USDT", received_at=RECEIVED, **fields)
    table = book_table(book, RECEIVED).to_pylist()
    assert [(r["side"], r["level"], r["price"]) for r in table] == [
        ("bid", 0, 100.0),
        ("bid", 1, 99.0),
        ("ask", 0, 65557.7),
    ]
    assert {r["time_source"] for r in table} == {"exchange"} and table[0]["update_id"] == 230704


def test_depth_limits_follow_each_endpoint():
    binance, bybit = market_data_spec("binance"), market_data_spec("bybit")
    assert request_limit(binance.depth["linear"], 100) == 100
    assert request_limit(binance.depth["linear"], 30) == 50  # 5,10,20,50,100,500,1000 only
    assert request_limit(binance.depth["spot"], 30) == 30
    assert request_limit(bybit.depth["spot"], 1000) == 1000


def test_binance_open_interest_history_keeps_the_quote_value():
    oi = parse_binance_oi_hist(example("binance_usdm_open_interest_hist"), "t")
    assert oi["time"].tolist() == [1591261042378]
    assert oi["open_interest"].tolist() == [20403.12345678]
    assert oi["open_interest_value"].tolist() == [176196512.12345678]


def test_bybit_open_interest_is_newest_first_with_a_cursor():
    oi, cursor = parse_bybit_oi(example("bybit_open_interest"), "t")
    assert oi["time"].tolist() == [
        1780617600000,
        1780704000000,
        1780790400000,
        1780876800000,
        1780963200000,
    ]  # the example lists them newest first
    assert oi["open_interest"].tolist()[:2] == [63942311.0, 63942311.0]
    assert np.isnan(oi["open_interest_value"]).all()  # base units only
    assert cursor == "lastid%3D19408935%26lasttime%3D1780617600"


def test_binance_current_open_interest():
    assert parse_binance_oi_now(example("binance_usdm_open_interest"), "t") == (
        1589437530011,
        10659.509,
    )


def test_binance_funding_has_a_mark_price():
    page = parse_binance_funding(example("binance_usdm_funding_rate"), "t")
    assert page["funding_time"].tolist() == [1570608000000]
    assert page["funding_rate"].tolist() == [-0.0375]
    assert page["mark_price"].tolist() == [34287.54619963]


def test_bybit_funding_has_no_mark_price():
    page = parse_bybit_funding(example("bybit_funding_history"), "t")
    assert page["funding_time"].tolist() == [1672041600000]
    assert page["funding_rate"].tolist() == [0.0001]
    assert np.isnan(page["mark_price"]).all()


def test_funding_info_gives_hours_by_symbol():
    payload = [
        {
            "symbol": "BLZUSDT",
            "adjustedFundingRateCap": "0.02",
            "adjustedFundingRateFloor": "-0.02",
            "fundingIntervalHours": 4,
            "disclaimer": False,
        }
    ]
    assert parse_binance_funding_info(payload, "t") == {"BLZUSDT": 4.0}


def test_interval_hours_follow_the_exchange_times_across_a_change():
    times = np.array([0, 8, 16, 20, 24], dtype=np.int64) * HOUR
    assert interval_hours(times, None, 4.0).tolist() == [8, 8, 8, 4, 4]  # first: the next one's
    assert interval_hours(times[3:], 16 * HOUR, 8.0).tolist() == [4, 4]  # after stored rows
    assert interval_hours(times[:1], None, 4.0).tolist() == [4]  # alone: the current interval
