"""capture-orderbook end to end, the catalog's source column, and the flow's stream mode."""

from __future__ import annotations

import socket

import pyarrow as pa

from tests.conftest import query_catalog, run_cli
from tests.lake.helpers import publish_as_is
from tests.stream.conftest import stream_env, stream_settings
from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import ORDERBOOK_LEVELS
from vectorflow.pipelines.market_data import ingest_market_unit
from vectorflow.units import Unit

ARGS = ["capture-orderbook", "--exchange", "bybit", "--market", "linear"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_lands_stream_rows_visible_in_the_catalog(streams, data_dir):
    args = [*ARGS, "--symbol", "BTC/USDT:USDT", "--seconds", "3", "--depth", "10"]
    args += ["--every", "500ms"]
    done = run_cli(args, stream_env(streams, data_dir), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "updates received, 0 resyncs, 0 reconnects" in done.stdout
    (row,) = query_catalog(
        data_dir,
        "SELECT source, time_source, count(DISTINCT snapshot_time), count(*), max(level) "
        "FROM orderbook_levels WHERE exchange = 'bybit' AND market = 'linear' GROUP BY ALL",
    )
    assert row[0] == "stream" and row[1] == "exchange"
    assert row[2] >= 2 and row[3] == row[2] * 2 * 10 and row[4] == 9
    stats = query_catalog(data_dir, "SELECT count(*), min(spread_bps) FROM orderbook_stats")
    assert stats[0][0] == row[2] and stats[0][1] > 0


def test_cli_fails_clearly_when_it_cannot_connect(streams, data_dir):
    dead = f"ws://127.0.0.1:{_closed_port()}"
    env = stream_env(streams, data_dir) | {"VECTORFLOW_BYBIT_WS_URL": dead}
    done = run_cli([*ARGS, "--symbol", "BTC/USDT:USDT", "--seconds", "2"], env, timeout=120)
    assert done.returncode == 1
    assert "could not connect" in done.stderr
    assert "bybit linear BTC/USDT:USDT" in done.stderr and f"{dead}/v5/public/linear" in done.stderr
    assert not (data_dir / "lake" / "orderbook_levels" / "exchange=bybit").exists()


def test_cli_rejects_bad_options(streams, data_dir):
    env = stream_env(streams, data_dir)
    bad = run_cli([*ARGS, "--symbol", "BTC/USDT:USDT", "--seconds", "2", "--every", "soon"], env)
    assert bad.returncode == 2 and "--every 'soon'" in bad.stderr
    deep = run_cli([*ARGS, "--symbol", "BTC/USDT:USDT", "--seconds", "2", "--depth", "500"], env)
    assert deep.returncode == 2 and "--depth 500" in deep.stderr


def test_rest_rows_and_files_without_the_column_read_as_rest(streams, data_dir):
    settings = stream_settings(streams, data_dir)
    unit = Unit("binance", "linear", "BTC/USDT:USDT", None, "orderbook_levels")
    ingest_market_unit(unit, None, streams.rest.now_ms(), settings, 5)
    # a file written before the column existed
    values = {"exchange": "bybit", "market": "spot", "symbol_id": "BTCUSDT"}
    folder = partition_dir(settings.storage.root, ORDERBOOK_LEVELS, values)
    old_schema = pa.schema([f for f in ORDERBOOK_LEVELS.schema if f.name != "source"])
    n, t = 2, pa.array([1_780_000_000_000] * 2).cast(pa.timestamp("ms"))
    old = pa.table(
        {
            "exchange": ["bybit"] * n,
            "market": ["spot"] * n,
            "symbol": ["BTC/USDT"] * n,
            "snapshot_time": t,
            "side": ["bid", "ask"],
            "level": pa.array([0, 0], pa.int32()),
            "price": [100.0, 101.0],
            "amount": [1.0, 2.0],
            "time_source": ["exchange"] * n,
            "update_id": pa.array([7, 7], pa.int64()),
            "received_at": t,
            "ingested_at": t,
        },
        schema=old_schema,
    )
    t0 = 1_780_000_000_000
    publish_as_is(settings.storage, ORDERBOOK_LEVELS, folder, old, t0, t0)
    rows = query_catalog(
        data_dir, "SELECT exchange, source, count(*) FROM orderbook_levels GROUP BY ALL ORDER BY 1"
    )
    assert rows == [("binance", "rest", 10), ("bybit", "rest", 2)]
