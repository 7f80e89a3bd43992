"""Fixtures of the stream tests: a REST simulator with its WebSocket streams, per test."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.conftest import SIM_NOW, sim_env
from vectorflow.config import load_settings
from vectorflow.lake.scan import snapshot_glob
from vectorflow.lake.schema import ORDERBOOK_LEVELS
from vectorflow.sim import ExchangeSimulator
from vectorflow.sim.ws import WsSimulator

#: (exchange, market, unified symbol) of every streamed venue
VENUES = [
    ("binance", "spot", "BTC/USDT"),
    ("binance", "linear", "BTC/USDT:USDT"),
    ("bybit", "spot", "BTC/USDT"),
    ("bybit", "linear", "BTC/USDT:USDT"),
]


@pytest.fixture
def streams():
    """A REST simulator of this test's own and its WebSocket streams (books, faults)."""
    with ExchangeSimulator(now=SIM_NOW) as rest, WsSimulator(rest) as ws:
        yield ws


def stream_env(ws: WsSimulator, data_dir: Path) -> dict[str, str]:
    """Environment pointing VectorFlow's REST and WebSocket URLs at the simulator."""
    return sim_env(ws.rest, data_dir) | {
        "VECTORFLOW_BINANCE_WS_URL": ws.url,
        "VECTORFLOW_BYBIT_WS_URL": ws.url,
    }


def stream_settings(ws: WsSimulator, data_dir: Path):
    """Settings for library calls against the simulator's streams."""
    return load_settings(data_dir, env=stream_env(ws, data_dir))


def stored_snapshots(data_dir: Path) -> dict[int, dict]:
    """Captured snapshots in the lake by update id: {side: [(price, amount), ...], time, ...}."""
    glob = snapshot_glob(data_dir / "lake", ORDERBOOK_LEVELS)
    rows = duckdb.sql(
        "SELECT update_id, epoch_ms(snapshot_time), side, level, price, amount, source, "
        f"time_source "
        f"FROM read_parquet('{glob}') WHERE update_id IS NOT NULL ORDER BY update_id, side, level"
    ).fetchall()
    snaps: dict[int, dict] = {}
    for update_id, stamp, side, _level, price, amount, source, time_source in rows:
        snap = snaps.setdefault(
            update_id,
            {"bid": [], "ask": [], "time": stamp, "source": source, "time_source": time_source},
        )
        snap[side].append((price, amount))
    return snaps


def assert_matches_true_book(ws: WsSimulator, exchange, market, snaps: dict, depth: int) -> None:
    """Every captured snapshot equals the exchange's book at its update id (top `depth`)."""
    for update_id, snap in snaps.items():
        true_id, bids, asks = ws.true_book(exchange, market, "BTCUSDT", update_id=update_id,
                                           depth=depth)  # fmt: skip
        assert true_id == update_id, f"no book version {update_id} on the exchange"
        assert snap["bid"] == bids, f"bids differ at update {update_id}"
        assert snap["ask"] == asks, f"asks differ at update {update_id}"
