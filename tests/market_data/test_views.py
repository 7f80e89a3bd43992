"""orderbook_stats and market_snapshot against the same numbers computed here from the rows."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from tests.conftest import query_catalog, sim_settings
from vectorflow.lake.scan import snapshot_glob
from vectorflow.lake.schema import DATASETS
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.market_data import ingest_market_unit
from vectorflow.units import Unit

HOUR = 3_600_000


def _raw(data_dir, dataset: str) -> dict[str, np.ndarray]:
    glob = snapshot_glob(data_dir / "lake", DATASETS[dataset])
    table = duckdb.sql(f"SELECT * FROM read_parquet('{glob}', union_by_name = true)").fetchnumpy()
    return {k: np.asarray(v) for k, v in table.items()}


def test_orderbook_stats_match_the_levels(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    for market, symbol in (("spot", "BTC/USDT"), ("linear", "SOL/USDT:USDT")):
        unit = Unit("binance", market, symbol, None, "orderbook_levels")
        ingest_market_unit(unit, None, fresh_sim.now_ms(), settings, 200, clock=fresh_sim.now_ms)
    raw = _raw(data_dir, "orderbook_levels")
    stats = query_catalog(
        data_dir,
        "SELECT symbol, mid, spread_bps, bid_depth_50bps_quote, ask_depth_50bps_quote, "
        "imbalance_50bps, bid_depth_100bps_quote, imbalance_100bps FROM orderbook_stats",
    )
    assert len(stats) == 2
    for symbol, mid, spread, bid50, ask50, imb50, bid100, imb100 in stats:
        mine = raw["symbol"] == symbol
        side, price, amount = raw["side"][mine], raw["price"][mine], raw["amount"][mine]
        bid, ask = price[side == "bid"].max(), price[side == "ask"].min()
        m = (bid + ask) / 2
        assert mid == pytest.approx(m) and spread == pytest.approx((ask - bid) / m * 1e4)
        quote = price * amount
        b50 = quote[(side == "bid") & (price >= m * 0.995)].sum()
        a50 = quote[(side == "ask") & (price <= m * 1.005)].sum()
        b100 = quote[(side == "bid") & (price >= m * 0.99)].sum()
        a100 = quote[(side == "ask") & (price <= m * 1.01)].sum()
        assert (bid50, ask50, bid100) == pytest.approx((b50, a50, b100))
        assert imb50 == pytest.approx((b50 - a50) / (b50 + a50))
        assert imb100 == pytest.approx((b100 - a100) / (b100 + a100))
        if symbol == "SOL/USDT:USDT":  # 200 levels of a 22 USDT coin reach beyond 1 % of mid
            assert b100 > b50 > 0 and quote[side == "bid"].sum() > b100


def test_market_snapshot_compares_venues(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    now = fresh_sim.now_ms()
    for exchange in ("binance", "bybit"):
        for market, symbol in (("spot", "BTC/USDT"), ("linear", "BTC/USDT:USDT")):
            unit = Unit(exchange, market, symbol, "1h")
            ingest_series(unit, now - 72 * HOUR, now, settings, clock=fresh_sim.now_ms)
    ingest_series(
        Unit("binance", "spot", "BNB/USDT", "1h"),
        now - 72 * HOUR,
        now,
        settings,
        clock=fresh_sim.now_ms,
    )
    raw = _raw(data_dir, "candles")
    t = raw["open_time"].astype("datetime64[ms]").astype(np.int64)
    rows = query_catalog(
        data_dir,
        "SELECT exchange, market, close, exchange_spread_bps, basis_bps, quote_volume_24h, "
        "volume_share_24h, epoch_ms(price_time) FROM market_snapshot ORDER BY exchange, market",
    )
    assert [(r[0], r[1]) for r in rows] == [
        ("binance", "linear"),
        ("binance", "spot"),
        ("bybit", "linear"),
        ("bybit", "spot"),
    ]  # BNB/USDT is listed on one exchange only: not compared
    closes, volumes = {}, {}
    for exchange, market, *_ in rows:
        mine = (
            (raw["exchange"] == exchange)
            & (raw["market"] == market)
            & (raw["symbol"] != "BNB/USDT")
        )
        last = t[mine].max()
        closes[exchange, market] = raw["close"][mine][t[mine] == last][0]
        volumes[exchange, market] = raw["quote_volume"][mine][
            t[mine] >= last + HOUR - 24 * HOUR
        ].sum()
    total = sum(volumes.values())
    for exchange, market, close, spread, basis, vol, share, price_time in rows:
        same = [closes[e, m] for e, m in closes if m == market]
        assert close == closes[exchange, market] and price_time == t.max() + HOUR
        assert spread == pytest.approx(
            (max(same) - min(same)) / ((max(same) + min(same)) / 2) * 1e4
        )
        assert vol == pytest.approx(volumes[exchange, market])
        assert share == pytest.approx(volumes[exchange, market] / total)
        expected = (close / closes[exchange, "spot"] - 1) * 1e4 if market == "linear" else None
        assert basis == (pytest.approx(expected) if expected is not None else None)
