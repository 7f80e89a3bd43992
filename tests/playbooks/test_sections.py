"""The payload's sections against the catalog's own views, now and at a time in the past.

The lake is landed from the simulator by the real pipeline (tests/playbooks/market_lake.py); the
past is checked against the catalog of a copy of the lake truncated at that time.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import query_catalog
from tests.playbooks.conftest import lake_of
from tests.playbooks.market_lake import (
    AS_OF_NOW,
    AS_OF_PAST,
    BOOK_TIMES,
    HOUR,
    PERP,
    TIMEFRAMES,
)
from vectorflow.playbooks.history import LoadOptions, load_history
from vectorflow.timeframes import ms_to_iso
from vectorflow.units import Unit

BOOK = (
    "mid", "spread_bps", "bid_depth_50bps_quote", "ask_depth_50bps_quote", "imbalance_50bps",
    "bid_depth_100bps_quote", "ask_depth_100bps_quote", "imbalance_100bps",
)  # fmt: skip
DERIVATIVES = (
    "oi_change", "oi_change_24h", "price_change", "oi_quadrant", "oi_zscore", "funding_annualized",
)  # fmt: skip
LATER = AS_OF_PAST + HOUR  # no snapshot within 5 minutes before it


@pytest.fixture(scope="module")
def sections(market):
    full, _ = market
    history = load_history(
        lake_of(full), PERP, [AS_OF_PAST, LATER, AS_OF_NOW], LoadOptions(timeframes=TIMEFRAMES)
    )
    return {t: history.inputs_at(t).sections for t in (AS_OF_PAST, LATER, AS_OF_NOW)}


def _where(unit: Unit) -> str:
    return f"exchange = '{unit.exchange}' AND market = '{unit.market}'"


def test_the_order_book_is_the_latest_snapshot_at_or_before_as_of(market, sections):
    full, _ = market
    stats = query_catalog(
        full,
        f"SELECT epoch_ms(snapshot_time) AS t, * FROM orderbook_stats WHERE {_where(PERP)}",
        frame=True,
    ).set_index("t")
    # the exchange stamps a snapshot a moment before the simulator's clock that fetched it
    snapshots = sorted(stats.index)
    assert np.allclose(snapshots, BOOK_TIMES, atol=1000)
    for as_of, snapshot in ((AS_OF_NOW, snapshots[2]), (AS_OF_PAST, snapshots[0])):
        book = sections[as_of]["order_book"]
        assert book["time"] == ms_to_iso(snapshot) and book["source"].startswith("orderbook")
        assert book["age_seconds"] == (as_of - snapshot) / 1000
        for column in BOOK:
            assert book[column] == pytest.approx(stats.loc[snapshot, column], rel=1e-12), column
    assert sections[LATER]["order_book"]["unavailable"] == "no snapshot within 5 minutes"


def _cross(data_dir) -> dict:
    row = query_catalog(
        data_dir, f"FROM market_snapshot WHERE {_where(PERP)}", frame=True
    ).iloc[0]
    return row.to_dict()


def test_cross_exchange_equals_market_snapshot_as_of_then(market, sections):
    full, past = market
    for as_of, data_dir in ((AS_OF_NOW, full), (AS_OF_PAST, past)):
        expected, got = _cross(data_dir), sections[as_of]["cross_exchange"]
        assert got["time"] == ms_to_iso(as_of)
        for column in ("exchange_spread_bps", "basis_bps", "quote_volume_24h", "volume_share_24h"):
            assert got[column] == pytest.approx(expected[column], rel=1e-9), column
        venues = query_catalog(
            data_dir,
            "SELECT exchange, market, close FROM market_snapshot "
            "WHERE NOT (exchange = 'binance' AND market = 'linear') ORDER BY ALL",
        )
        assert [(v["exchange"], v["market"], v["close"]) for v in got["venues"]] == venues
    # the past is the past: not the latest prices
    now_closes = [v["close"] for v in sections[AS_OF_NOW]["cross_exchange"]["venues"]]
    past_closes = [v["close"] for v in sections[AS_OF_PAST]["cross_exchange"]["venues"]]
    assert now_closes != past_closes


def test_derivatives_equal_the_signals_and_open_interest_at_as_of(market, sections):
    full, _ = market
    for as_of in (AS_OF_NOW, AS_OF_PAST):
        stored = query_catalog(
            full,
            f"SELECT {', '.join(DERIVATIVES)} FROM signals WHERE {_where(PERP)} "
            f"AND timeframe = '1h' AND epoch_ms(as_of) = {as_of}",
            frame=True,
        ).iloc[0]
        got = sections[as_of]["derivatives"]
        assert stored["oi_change"] is not None and not np.isnan(stored["oi_change"])
        for column in DERIVATIVES:
            expected = stored[column]
            if isinstance(expected, str):
                assert got[column] == expected, column
            else:
                assert got[column] == pytest.approx(expected, rel=1e-9), column
        (oi_time, oi), *_ = query_catalog(
            full,
            "SELECT epoch_ms(time), open_interest FROM open_interest WHERE exchange = 'binance' "
            f"AND epoch_ms(time) <= {as_of} ORDER BY time DESC LIMIT 1",
        )
        assert (got["time"], got["open_interest"]) == (ms_to_iso(oi_time), oi)
    spot = load_history(lake_of(full), Unit("bybit", "spot", "BTC/USDT", "1h"), [AS_OF_NOW])
    assert "spot market has no open interest" in spot.sections["derivatives"][AS_OF_NOW][
        "unavailable"
    ]


def test_the_higher_timeframe_is_its_last_closed_bar(market, sections):
    full, _ = market
    for as_of in (AS_OF_NOW, AS_OF_PAST):
        close = as_of // (4 * HOUR) * (4 * HOUR)
        got = sections[as_of]["higher_timeframe"]
        stored = query_catalog(
            full,
            f"SELECT regime, adx, plus_di, minus_di FROM signals WHERE {_where(PERP)} "
            f"AND timeframe = '4h' AND epoch_ms(as_of) = {close}",
        )[0]
        assert (got["timeframe"], got["time"]) == ("4h", ms_to_iso(close))
        assert (got["regime"], got["adx"], got["plus_di"], got["minus_di"]) == stored
        bars = query_catalog(
            full,
            "SELECT max(high), min(low) FROM (SELECT * FROM candles WHERE "
            f"{_where(PERP)} AND timeframe = '4h' AND epoch_ms(open_time) < {close} "
            "ORDER BY open_time DESC LIMIT 20)",
        )[0]
        assert (got["levels"]["range_high_20"], got["levels"]["range_low_20"]) == bars
    four = load_history(lake_of(full), Unit("binance", "linear", "BTC/USDT:USDT", "4h"),
                        [AS_OF_NOW - 4 * HOUR], LoadOptions(timeframes=TIMEFRAMES))
    assert four.sections["higher_timeframe"][AS_OF_NOW - 4 * HOUR] == {
        "source": "candles, signals",
        "unavailable": "no timeframe longer than 4h is configured",
    }
