"""The DuckDB catalog: empty lake, old schemas, moved data dirs, locks, the 1.5 CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from tests.conftest import sim_settings
from tests.lake.helpers import publish_as_is
from vectorflow.config import load_settings
from vectorflow.lake.catalog import connect, refresh_catalog
from vectorflow.lake.schema import CANDLES
from vectorflow.pipelines.candles import ingest_series
from vectorflow.units import Unit

UNIT = Unit("bybit", "spot", "BTC/USDT", "1h")


def _count(data_dir: Path, sql: str = "SELECT count(*) FROM candles") -> int:
    con = connect(load_settings(data_dir), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def landed(sim, data_dir) -> Path:
    first, _ = sim.bundled_range("1h")
    ingest_series(
        UNIT, first, first + 48 * 3_600_000, sim_settings(sim, data_dir), clock=sim.now_ms
    )
    assert refresh_catalog(load_settings(data_dir))
    return data_dir


def test_views_exist_and_are_typed_over_an_empty_lake(data_dir):
    settings = load_settings(data_dir)
    assert refresh_catalog(settings)
    con = connect(settings, read_only=True)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE candles)").fetchall())
    assert types["open_time"] == "TIMESTAMP" and types["trades"] == "BIGINT"
    assert con.execute("SELECT count(*) FROM candle_gaps").fetchone()[0] == 0
    con.close()


def test_files_of_an_older_schema_are_read_after_columns_are_added(landed):
    old = pa.schema([f for f in CANDLES.schema if f.name != "taker_buy_volume"])
    row = {f.name: [None] for f in old}
    row.update(
        exchange=["bybit"],
        market=["spot"],
        symbol=["BTC/USDT"],
        timeframe=["1h"],
        open_time=[0],
        open=[1.0],
        high=[1.0],
        low=[1.0],
        close=[1.0],
        volume=[1.0],
        ingested_at=[0],
    )
    folder = next(landed.glob("lake/candles/exchange=bybit/market=spot/*/timeframe=1h"))
    lake = load_settings(landed).storage  # a file of an older version, as it wrote it
    publish_as_is(lake, CANDLES, folder, pa.table(row, schema=old), 0, 0)
    assert refresh_catalog(load_settings(landed))
    assert _count(landed) == 49
    assert _count(landed, "SELECT count(*) FROM candles WHERE taker_buy_volume IS NULL") == 49


def test_views_follow_a_moved_data_dir(landed, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.move(str(landed), moved)
    assert refresh_catalog(load_settings(moved))
    assert _count(moved) == 48
    con = connect(load_settings(moved), read_only=True)
    sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'candles'").fetchone()[0]
    con.close()
    assert str(moved) in sql and str(landed) not in sql


def test_times_do_not_shift_with_the_session_time_zone(landed):
    con = duckdb.connect(str(landed / "vectorflow.duckdb"), read_only=True)
    con.execute("SET TimeZone = 'Asia/Tokyo'")
    tokyo = con.execute(
        "SELECT min(open_time), min(date_trunc('day', open_time)) FROM candles"
    ).fetchone()
    con.execute("SET TimeZone = 'America/New_York'")
    new_york = con.execute(
        "SELECT min(open_time), min(date_trunc('day', open_time)) FROM candles"
    ).fetchone()
    con.close()
    assert tokyo == new_york


HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("holding", flush=True)
for line in sys.stdin:
    print(con.execute("SELECT count(*) FROM candles").fetchone()[0], flush=True)
"""


@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_a_session_holding_the_catalog_never_blocks_a_run(sim, landed, mode):
    catalog = landed / "vectorflow.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(catalog), mode],
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        first, _ = sim.bundled_range("1h")
        report = ingest_series(
            UNIT, first, first + 96 * 3_600_000, sim_settings(sim, landed), clock=sim.now_ms
        )
        assert report.rows_written == 48
        # a read-write session locks the file: the refresh says so and never raises
        done = refresh_catalog(load_settings(landed), attempts=2, wait_s=0.05)
        assert done == (mode == "ro")
        holder.stdin.write("count\n")
        holder.stdin.flush()
        assert int(holder.stdout.readline()) == 96  # the held session sees the new rows
    finally:
        holder.kill()
        holder.wait()
    assert refresh_catalog(load_settings(landed))
    assert _count(landed) == 96


def test_the_duckdb_15_command_line_opens_the_catalog(landed):
    cli = shutil.which("duckdb", path=str(Path(sys.executable).parent)) or shutil.which("duckdb")
    if cli is None:
        pytest.fail("the duckdb command line (PyPI duckdb-cli, a test dependency) is not installed")
    out = subprocess.run(
        [
            cli,
            "-readonly",
            "-csv",
            str(landed / "vectorflow.duckdb"),
            "-c",
            "SELECT count(*) AS n FROM candles",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["n", "48"]
