"""Crash safety: an ingest process killed with SIGKILL at random moments, then a rerun."""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from pathlib import Path

from tests.resilience.conftest import Lab, lake_rows, run_backfill, timed_backfill, write_settings
from vectorflow.config import load_settings
from vectorflow.pipelines.candles import ingest_series
from vectorflow.units import Unit

UNIT = Unit("binance", "spot", "BTC/USDT", "1m")
SPEC = "binance/spot/BTC/USDT/1m"
DAYS = 4  # 6 pages of 1000, each landed as it comes (flush_rows = 1000)
TRIALS = 10


def _land(lab: Lab, since: int) -> list[tuple]:
    settings = load_settings(lab.data_dir, env=lab.env())
    report = ingest_series(UNIT, since, lab.sim.now_ms(), settings, clock=lab.sim.now_ms)
    assert report.status == "ok"
    return lake_rows(lab.data_dir)


def _lab(lab: Lab, folder: Path) -> Lab:
    folder.mkdir()
    write_settings(folder, flush_rows=1000, time_scale=lab.scale)
    return Lab(lab.sim, folder)


def test_sigkill_at_random_moments_leaves_a_readable_lake_that_a_rerun_completes(lab, tmp_path):
    since, until = lab.sim.now_ms() - DAYS * 86_400_000, lab.sim.now_ms()
    clean = _lab(lab, tmp_path / "clean")
    work = timed_backfill(clean.env(), since, until, [SPEC])  # how long the work lasts
    expected = lake_rows(clean.data_dir)
    assert len(expected) == DAYS * 1440 - 1

    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    labs = [_lab(lab, tmp_path / f"trial{k}") for k in range(TRIALS)]
    workers = [  # all started at once: their imports overlap; each waits for its "go"
        run_backfill(t.env(), since, until, [SPEC], "--threads", "1", "--wait-for-go") for t in labs
    ]
    landed: list[int] = []
    for trial, (crashed, worker) in enumerate(zip(labs, workers, strict=True)):
        assert worker.stdout.readline().strip() == "ready"
        moment = rng.uniform(0.0, work)
        worker.stdin.write("go\n")
        worker.stdin.flush()
        time.sleep(moment)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        why = f"seed {seed}, killed {moment:.3f} s into {work:.3f} s of work (trial {trial})"
        partial = lake_rows(crashed.data_dir)  # readable, whatever the moment
        assert len(partial) == len(set(r[:5] for r in partial)), why
        assert set(partial) <= set(expected), why
        with sqlite3.connect(crashed.data_dir / "state.db") as con:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",), why
        assert _land(crashed, since) == expected, why
        landed.append(len(partial))
    assert any(0 < n < len(expected) for n in landed), landed  # some kills hit mid-ingest
