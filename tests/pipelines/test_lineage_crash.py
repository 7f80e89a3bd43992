"""A recompute killed with SIGKILL leaves each dataset with the old rows or the new ones."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from tests.conftest import query_catalog, sim_settings
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.signals import update_signals
from vectorflow.units import Unit

UNIT = Unit("bybit", "linear", "BTC/USDT:USDT", "5m")
TRIALS = 4
#: Loads everything first, says "ready", waits for a line, then recomputes with a row size.
WORKER = """
import sys
import vectorflow.signals  # loaded before the go: the kill lands in the work
from vectorflow.pipelines.signals import update_signals
from vectorflow.config import load_settings
from vectorflow.units import Unit
settings = load_settings(sys.argv[1], env={})
print("ready", flush=True)
sys.stdin.readline()
update_signals(Unit("bybit", "linear", "BTC/USDT:USDT", "5m"), settings,
               tpo_row_size=float(sys.argv[2]))
"""
PER_DATASET = """
SELECT count(*), count(DISTINCT as_of), count(DISTINCT signal_options),
       min(signal_options) FROM signals
UNION ALL
SELECT count(*), count(DISTINCT (type, level_source, confirm_time)),
       count(DISTINCT signal_options), min(signal_options) FROM trap_events"""


def _worker(data_dir, row_size: float) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORFLOW_")}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(data_dir), str(row_size)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip


def test_sigkill_during_a_recompute_never_leaves_both_or_a_duplicate(sim, data_dir):
    settings = sim_settings(sim, data_dir)
    first, _ = sim.bundled_range("5m")
    ingest_series(UNIT, first, sim.now_ms(), settings, clock=sim.now_ms)
    update_signals(UNIT, settings)
    started = time.monotonic()
    update_signals(UNIT, settings, tpo_row_size=50.0)  # the work a kill interrupts
    work = time.monotonic() - started
    (bars, *_), _ = query_catalog(data_dir, PER_DATASET)

    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    workers = [_worker(data_dir, 10.0 + k) for k in range(TRIALS)]  # imports overlap
    allowed = {'{"tpo_row_size":50.0}'}
    for k, worker in enumerate(workers):
        assert worker.stdout.readline().strip() == "ready"
        moment = rng.uniform(0.0, 1.2 * work)
        worker.stdin.write("go\n")
        worker.stdin.flush()
        time.sleep(moment)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        allowed.add(f'{{"tpo_row_size":{10.0 + k}}}')
        why = f"seed {seed}, killed {moment:.3f} s into {work:.3f} s of work (trial {k})"
        rows, trap_rows = query_catalog(data_dir, PER_DATASET)
        assert rows[:3] == (bars, bars, 1) and rows[3] in allowed, why  # old or new, whole
        assert trap_rows[0] == trap_rows[1] and trap_rows[2] == 1, why
        assert trap_rows[3] in allowed, why
    update_signals(UNIT, settings, tpo_row_size=10.0)
    rows, trap_rows = query_catalog(data_dir, PER_DATASET)
    assert rows == (bars, bars, 1, '{"tpo_row_size":10.0}')
    assert trap_rows[0] == trap_rows[1] > 0 and trap_rows[2:] == (1, rows[3])
