"""Library-level ingest against the simulator: incremental runs, backfill, duplicates, crashes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading

import duckdb
import pytest

from tests.conftest import sim_env, sim_settings
from vectorflow.config import load_settings
from vectorflow.errors import PermanentError
from vectorflow.lake.catalog import connect, refresh_catalog
from vectorflow.lake.files import TMP_SUFFIX
from vectorflow.pipelines.candles import ingest_series
from vectorflow.timeframes import timeframe_ms
from vectorflow.units import Unit

UNIT = Unit("binance", "spot", "BTC/USDT", "1h")
HOUR = timeframe_ms("1h")


def _kline_requests(sim) -> int:
    return sum(1 for r in sim.requests if "kline" in r["path"].lower())


def _candles(data_dir, where: str = "true") -> list[tuple]:
    settings = load_settings(data_dir)
    refresh_catalog(settings)
    con = connect(settings, read_only=True)
    try:
        return con.execute(
            f"SELECT exchange, market, symbol, timeframe, epoch_ms(open_time), close "
            f"FROM candles WHERE {where} ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


def _duplicate_keys(data_dir) -> int:
    """Keys held twice by the files of the current snapshots and files put in the folders."""
    con = duckdb.connect()
    lake = data_dir / "lake" / "candles"
    files = [*lake.glob("*/*/*/*/current/2*.parquet"), *lake.glob("*/*/*/*/2*.parquet")]
    try:
        return con.execute(
            f"SELECT count(*) - count(DISTINCT (exchange, market, symbol, timeframe, open_time)) "
            f"FROM read_parquet({[str(f) for f in files]})"
        ).fetchone()[0]
    finally:
        con.close()


def test_first_run_without_since_starts_first_run_days_back(fresh_sim, data_dir):
    (data_dir / "vectorflow.toml").write_text("[series]\nfirst_run_days = 2\n")
    settings = sim_settings(fresh_sim, data_dir)
    now = fresh_sim.now_ms()
    report = ingest_series(UNIT, None, now, settings, clock=fresh_sim.now_ms)
    start = now - 2 * 24 * HOUR
    first_open = -(-start // HOUR) * HOUR  # the first candle opening at or after the start
    assert report.rows_written == (now // HOUR * HOUR - first_open) // HOUR
    assert _candles(data_dir)[0][4] == first_open
    again = ingest_series(UNIT, None, now, settings, clock=fresh_sim.now_ms)
    assert again.rows_written == 0  # the second run resumes: no refetch of the window


def test_first_run_needs_since_when_windows_have_no_default(tmp_path):
    from vectorflow.lake.coverage import windows_to_fetch
    from vectorflow.lake.storage import LocalStorage

    lake = LocalStorage(tmp_path / "lake", tmp_path)
    with pytest.raises(PermanentError, match="give since"):
        windows_to_fetch(lake, lake.root / "candles" / "a", lake.root / "coverage_ranges" / "b",
                         None, 10**12, "binance spot x 1h")  # fmt: skip


def test_incremental_run_stores_only_new_candles(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    first, _ = fresh_sim.bundled_range("1h")
    now = fresh_sim.now_ms()
    report = ingest_series(UNIT, first, now, settings, clock=fresh_sim.now_ms)
    closed = (now // HOUR * HOUR - first) // HOUR  # every closed hour since `first`
    assert report.rows_written == closed and report.detail["gaps"] == 0

    fresh_sim.set_now(now + 3 * HOUR)
    fresh_sim.clear_requests()
    later = ingest_series(UNIT, None, fresh_sim.now_ms(), settings, clock=fresh_sim.now_ms)
    assert later.rows_written == 3
    assert _kline_requests(fresh_sim) == 1
    rows = _candles(data_dir)
    assert len(rows) == closed + 3
    assert rows[-1][4] + HOUR <= fresh_sim.now_ms()  # the open candle is never stored

    fresh_sim.clear_requests()
    nothing = ingest_series(UNIT, None, fresh_sim.now_ms(), settings, clock=fresh_sim.now_ms)
    assert nothing.rows_written == 0
    assert _kline_requests(fresh_sim) <= 1


def test_since_earlier_than_stored_fetches_only_the_missing_range(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    first, _ = fresh_sim.bundled_range("1h")
    now = fresh_sim.now_ms()
    ingest_series(UNIT, first + 100 * HOUR, now, settings, clock=fresh_sim.now_ms)
    fresh_sim.clear_requests()
    report = ingest_series(UNIT, first, now, settings, clock=fresh_sim.now_ms)
    assert report.rows_written == 100
    params = [r["params"] for r in fresh_sim.requests if "kline" in r["path"].lower()]
    assert int(params[0]["startTime"]) == first
    assert int(params[0]["endTime"]) == first + 100 * HOUR - 1
    assert len(_candles(data_dir)) == (now // HOUR * HOUR - first) // HOUR
    assert _duplicate_keys(data_dir) == 0


def test_concurrent_overlapping_runs_leave_unique_keys_in_the_view(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    first, _ = fresh_sim.bundled_range("1h")
    now = fresh_sim.now_ms()
    threads = [
        threading.Thread(
            target=ingest_series,
            args=(UNIT, first, now, settings),
            kwargs={"clock": fresh_sim.now_ms},
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # a retried write that landed twice: the same range again under another file name, copied
    # into the partition folder (part of no snapshot: never read)
    landed = sorted(data_dir.glob("lake/candles/*/*/*/*/current/2*.parquet"))[0]
    shutil.copy(landed, landed.parent.parent / (landed.name[:-20] + "0" * 12 + ".parquet"))
    assert _duplicate_keys(data_dir) > 0  # the files overlap...
    rows = _candles(data_dir)
    assert len(rows) == len(set(r[:5] for r in rows)) == (now // HOUR * HOUR - first) // HOUR


CRASH = textwrap.dedent("""
    import os, sys
    import vectorflow.lake.files as files
    from vectorflow.units import Unit
    from vectorflow.pipelines.candles import ingest_series
    from vectorflow.config import load_settings
    real_replace = os.replace
    def crash(src, dst):
        if str(src).endswith(files.TMP_SUFFIX):
            os._exit(9)  # killed after the temp file is written, before the rename
        real_replace(src, dst)
    os.replace = crash
    unit = Unit("bybit", "linear", "BTC/USDT:USDT", "5m")
    ingest_series(unit, int(sys.argv[1]), int(sys.argv[2]), load_settings())
""")


def test_crash_between_temp_write_and_rename_leaves_lake_readable(fresh_sim, data_dir):
    first, _ = fresh_sim.bundled_range("5m")
    until = first + 3000 * timeframe_ms("5m")
    env = sim_env(fresh_sim, data_dir)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH, str(first), str(until)],
        env={**env, "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert crashed.returncode == 9, crashed.stderr
    assert list(data_dir.glob(f"lake/candles/**/*{TMP_SUFFIX}"))  # the stray temp file is there
    assert _candles(data_dir) == []  # ...and invisible: the lake reads as empty, not broken
    unit = Unit("bybit", "linear", "BTC/USDT:USDT", "5m")
    report = ingest_series(
        unit, first, until, sim_settings(fresh_sim, data_dir), clock=fresh_sim.now_ms
    )
    assert report.rows_written == 3000
    assert len(_candles(data_dir)) == 3000
