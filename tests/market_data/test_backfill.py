"""Backfill: killed half-way and resumed, it ends with exactly the rows of an uninterrupted one."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb

from tests.conftest import sim_env, sim_settings
from vectorflow.lake.scan import snapshot_glob
from vectorflow.lake.schema import CANDLES
from vectorflow.pipelines.backfill import Progress, backfill_series, expected_candles
from vectorflow.units import Unit

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
UNIT = Unit("binance", "linear", "BTC/USDT:USDT", "1m")
COLUMNS = "open_time, open, high, low, close, volume, quote_volume, trades, taker_buy_volume"

KILLED = textwrap.dedent("""
    import os, signal, sys
    import vectorflow.pipelines.backfill as backfill
    from vectorflow.units import Unit
    from vectorflow.config import load_settings
    backfill.BACKFILL_FLUSH_ROWS = 2000
    unit = Unit("binance", "linear", "BTC/USDT:USDT", "1m")
    progress = backfill.Progress(series_total=1, candles_expected=0)
    def kill_at(snap):
        if snap.pages == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)  # as `kill -9` would, mid-run
    progress.listeners.append(kill_at)
    backfill.backfill_series(unit, int(sys.argv[1]), int(sys.argv[2]), load_settings(), progress)
""")


def _rows(data_dir) -> list[tuple]:
    glob = snapshot_glob(data_dir / "lake", CANDLES)
    return duckdb.sql(
        f"SELECT DISTINCT {COLUMNS} FROM read_parquet('{glob}') ORDER BY open_time"
    ).fetchall()


def test_a_killed_backfill_resumes_where_it_stopped(fresh_sim, tmp_path):
    now = fresh_sim.now_ms()
    since, until = now // MINUTE * MINUTE - 15 * DAY, now
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    killed.mkdir()
    straight.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", KILLED, str(since), str(until), "12"],
        env={**sim_env(fresh_sim, killed), "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert run.returncode == -9, run.stderr  # killed
    landed = _rows(killed)
    assert 0 < len(landed) < 15 * 1440  # half-way: some pages landed, not all
    settings = sim_settings(fresh_sim, killed)
    left = expected_candles(UNIT, since, until, settings)
    assert left == 15 * 1440 - len(landed)
    fresh_sim.clear_requests()
    progress = Progress(series_total=1, candles_expected=left)
    backfill_series(UNIT, since, until, settings, progress)
    first_asked = int(fresh_sim.requests[0]["params"]["startTime"])
    assert first_asked == landed[-1][0].timestamp() * 1000 + MINUTE  # nothing landed is refetched
    snap = progress.snapshot()
    assert snap.candles == left and snap.series_done == 1 and snap.fraction == 1.0
    backfill_series(UNIT, since, until, sim_settings(fresh_sim, straight))
    assert _rows(killed) == _rows(straight)
    assert len(_rows(straight)) == 15 * 1440


def test_a_backfill_from_before_the_listing_ends_at_100_percent(fresh_sim, data_dir):
    # Regression: slots before a listing were never counted as done, so a completed backfill
    # stood at 19 % and "about 6 s left"
    from vectorflow.pipelines.backfill import backfill_job
    from vectorflow.pipelines.candles import plan_ingest
    from vectorflow.pipelines.run import ThreadExecutor
    from vectorflow.timeframes import ms_to_iso

    listing = fresh_sim.listing_ms("NEWUSDT")  # about ten days before the simulator's now
    now = fresh_sim.now_ms()
    plan = plan_ingest(["binance"], None, ["NEW/USDT"], ["1h"], since=listing - 40 * DAY, now=now)
    snaps = []
    (result,) = backfill_job(sim_settings(fresh_sim, data_dir), plan, ThreadExecutor(2),
                             [snaps.append])  # fmt: skip
    assert result.ok and result.first == ms_to_iso(listing)
    last = snaps[-1]
    slots = (now // HOUR * HOUR - HOUR - (listing - 40 * DAY)) // HOUR + 1  # closed 1h slots
    assert last.candles_expected == slots and last.candles == result.rows_written < slots // 4
    assert last.covered == slots and last.fraction == 1.0 and last.eta_seconds == 0
    fractions = [s.fraction for s in snaps]
    assert fractions == sorted(fractions)  # never goes back
    assert snaps[0].fraction > 0.7  # the first page already counts the 40 empty days before it
