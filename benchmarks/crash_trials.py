#!/usr/bin/env python
"""Crash trials: many more SIGKILLs at random moments than the test suite's ten.

Each trial starts an ingest process (`tests/resilience/backfill.py`: binance spot BTC/USDT 1m,
6 days, each page landed as it comes), kills it with SIGKILL at a random moment of its work
(uniform over the length of a fault-free run, measured first, imports not counted),
then checks that the lake reads (through the catalog), holds no duplicate key and no row a
fault-free run lacks, that `state.db` passes SQLite's integrity check, and that a rerun ends
equal to the fault-free run. Prints the failures (target 0) and where the kills landed: how
many left nothing, part, or everything landed. Baseline: the fault-free run itself.

Run from the repo:  python benchmarks/crash_trials.py [--trials 100] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.resilience.conftest import (  # noqa: E402
    Lab,
    lake_rows,
    run_backfill,
    timed_backfill,
    write_settings,
)
from vectorflow.config import load_settings  # noqa: E402
from vectorflow.pipelines.candles import ingest_series  # noqa: E402
from vectorflow.sim import ExchangeSimulator  # noqa: E402
from vectorflow.units import Unit  # noqa: E402

SCALE = 0.01
DAYS = 6
UNIT = Unit("binance", "spot", "BTC/USDT", "1m")
SPEC = "binance/spot/BTC/USDT/1m"


def land(lab: Lab, since: int) -> list[tuple]:
    """Ingest UNIT from `since` in this process; the lake's rows."""
    settings = load_settings(lab.data_dir, env=lab.env())
    ingest_series(UNIT, since, lab.sim.now_ms(), settings, clock=lab.sim.now_ms)
    return lake_rows(lab.data_dir)


def trial(sim, root: Path, since: int, expected: list[tuple], delay: float) -> tuple[str, int]:
    """One kill and its checks: (problem or "", rows landed before the rerun)."""
    lab = Lab(sim, root)
    root.mkdir()
    write_settings(root, flush_rows=1000, time_scale=SCALE)
    worker = run_backfill(lab.env(), since, sim.now_ms(), [SPEC])
    worker.stdout.readline()
    time.sleep(delay)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    partial = lake_rows(root)
    if len(partial) != len({r[:5] for r in partial}):
        return "duplicate keys", len(partial)
    if not set(partial) <= set(expected):
        return "rows a fault-free run lacks", len(partial)
    with sqlite3.connect(root / "state.db") as con:
        if con.execute("PRAGMA integrity_check").fetchone() != ("ok",):
            return "state.db corrupt", len(partial)
    if land(lab, since) != expected:
        return "rerun differs from the fault-free run", len(partial)
    return "", len(partial)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="vf-bench-crash-"))
    try:
        with ExchangeSimulator(now="2026-06-01T12:02:30Z", time_scale=SCALE) as sim:
            since = sim.now_ms() - DAYS * 86_400_000
            clean = Lab(sim, tmp / "clean")
            clean.data_dir.mkdir()
            write_settings(clean.data_dir, flush_rows=1000, time_scale=SCALE)
            work = timed_backfill(clean.env(), since, sim.now_ms(), [SPEC])
            expected = lake_rows(clean.data_dir)
            print(f"fault-free run: {len(expected)} rows in {work:.2f} s of work")
            problems, landed = [], []
            for k in range(args.trials):
                delay = round(rng.uniform(0.0, work), 3)
                problem, rows = trial(sim, tmp / f"t{k}", since, expected, delay)
                landed.append(rows)
                if problem:
                    problems.append((k, delay, problem))
                    print(f"trial {k}: killed after {delay} s: {problem}", flush=True)
                shutil.rmtree(tmp / f"t{k}", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    none = sum(1 for n in landed if n == 0)
    full = sum(1 for n in landed if n == len(expected))
    print(
        f"\n{args.trials} trials (seed {seed}): {len(problems)} failures (target 0); kills left "
        f"nothing landed {none}x, part {args.trials - none - full}x, everything {full}x"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
