"""Coverage: what was fetched, ranges the exchange confirmed empty, gaps with a status."""

from __future__ import annotations

import pytest

from tests.conftest import query_catalog, sim_settings
from vectorflow.pipelines.candles import ingest_series
from vectorflow.units import Unit

HOUR = 3_600_000
DAY = 24 * HOUR
EMPTY_RANGES = "SELECT epoch_ms(range_start), epoch_ms(range_end) FROM coverage_ranges"


def _kline_starts(sim) -> list[int]:
    starts = []
    for r in sim.requests:
        if "kline" in r["path"]:
            p = r["params"]
            starts.append(int(p.get("startTime") or p.get("start")))
    return starts


@pytest.mark.parametrize(
    ("exchange", "market", "symbol"),
    [("binance", "spot", "NEW/USDT"), ("bybit", "linear", "NEW/USDT:USDT")],
)
def test_a_symbol_listed_after_since_is_not_asked_again_from_since(
    fresh_sim, data_dir, exchange, market, symbol
):
    settings = sim_settings(fresh_sim, data_dir)
    unit = Unit(exchange, market, symbol, "1h")
    listing = fresh_sim.listing_ms("NEWUSDT")  # about ten days before the simulator's now
    since = listing - 20 * DAY
    now = fresh_sim.now_ms()
    first = ingest_series(unit, since, now, settings, clock=fresh_sim.now_ms)
    assert first.rows_written == (now // HOUR * HOUR - listing) // HOUR
    fresh_sim.set_now(now + 2 * HOUR)
    fresh_sim.clear_requests()
    again = ingest_series(unit, since, fresh_sim.now_ms(), settings, clock=fresh_sim.now_ms)
    assert again.rows_written == 2
    assert len(_kline_starts(fresh_sim)) == 1 and min(_kline_starts(fresh_sim)) > listing
    (row,) = query_catalog(
        data_dir,
        f"SELECT epoch_ms(first_time), missing, last_fetched_at IS NOT NULL FROM coverage "
        f"WHERE dataset = 'candles' AND exchange = '{exchange}'",
    )
    assert row == (listing, 0, True)
    empty = query_catalog(data_dir, EMPTY_RANGES)
    assert empty == [(since, listing)]


def test_an_outage_is_recorded_empty_and_not_fetched_again(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    now = fresh_sim.now_ms()
    start, end = now // HOUR * HOUR - 50 * HOUR, now // HOUR * HOUR - 44 * HOUR
    fresh_sim.fault("missing", exchange="binance", start=start, end=end)  # maintenance
    unit = Unit("binance", "spot", "BTC/USDT", "1h")
    since = now - 100 * HOUR
    ingest_series(unit, since, now, settings, clock=fresh_sim.now_ms)
    gaps = query_catalog(
        data_dir, "SELECT epoch_ms(gap_start), epoch_ms(gap_end), missing, status FROM candle_gaps"
    )
    assert gaps == [(start, end, 6, "exchange_empty")]
    (cov,) = query_catalog(
        data_dir, "SELECT missing, confirmed_empty FROM coverage WHERE dataset = 'candles'"
    )
    assert cov == (6, 6)
    fresh_sim.clear_requests()
    ingest_series(unit, since, now, settings, clock=fresh_sim.now_ms)
    assert all(s >= end for s in _kline_starts(fresh_sim))  # the outage is not asked again


def test_an_ongoing_outage_at_the_end_is_not_fetched_again(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    now = fresh_sim.now_ms()
    down = now // HOUR * HOUR - 3 * HOUR
    fresh_sim.fault("missing", exchange="bybit", start=down, end=now + 10 * HOUR)
    unit = Unit("bybit", "linear", "BTC/USDT:USDT", "1h")
    ingest_series(unit, now - 48 * HOUR, now, settings, clock=fresh_sim.now_ms)
    empty = query_catalog(data_dir, EMPTY_RANGES)
    assert empty == [(down, now // HOUR * HOUR)]  # up to the last closed hour
    fresh_sim.set_now(now + HOUR)
    fresh_sim.clear_requests()
    ingest_series(unit, None, fresh_sim.now_ms(), settings, clock=fresh_sim.now_ms)
    assert all(s >= now // HOUR * HOUR for s in _kline_starts(fresh_sim))


def test_a_hole_nobody_fetched_is_never_fetched_then_filled_on_request(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    unit = Unit("bybit", "spot", "BTC/USDT", "1h")
    t0 = fresh_sim.now_ms() // HOUR * HOUR - 100 * HOUR
    ingest_series(unit, t0, t0 + 30 * HOUR, settings, clock=fresh_sim.now_ms)
    ingest_series(unit, t0 + 40 * HOUR, t0 + 60 * HOUR, settings, clock=fresh_sim.now_ms)
    gaps = query_catalog(data_dir, "SELECT missing, status FROM candle_gaps")
    assert gaps == [(10, "never_fetched")]
    fresh_sim.clear_requests()
    filled = ingest_series(unit, t0, t0 + 60 * HOUR, settings, clock=fresh_sim.now_ms)
    assert filled.rows_written == 10
    assert _kline_starts(fresh_sim) == [t0 + 30 * HOUR]  # only the hole is asked for
    assert query_catalog(data_dir, "SELECT count(*) FROM candle_gaps") == [(0,)]
