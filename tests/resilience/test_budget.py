"""Two concurrent ingest processes share the real Binance USDⓈ-M budget: no 429, most of it used.

The simulator enforces 2400 weight per minute (klines of 1000 rows weigh 5), with the minute
shrunk by the time scale so that the two processes, together, could send about 1.6 times the
budget: the limiter, not the machine, is what holds them back.
"""

from __future__ import annotations

import json
import math
import time

from tests.resilience.conftest import run_backfill
from vectorflow.pipelines.candles import ingest_series
from vectorflow.sim.limits import Limits
from vectorflow.units import Unit

BUDGET, PAGES_PER_WINDOW = 2400, 2400 // 5
UNITS = [f"binance/linear/{base}/USDT:USDT/1m" for base in ("BTC", "ETH", "SOL", "XRP")]


def _pages_per_second(lab) -> float:
    """This machine's pace for 1000-row USDⓈ-M pages, one thread (the budget not in the way)."""
    settings = lab.settings()
    now = lab.sim.now_ms()
    unit = Unit("binance", "linear", "BNB/USDT:USDT", "1m")
    ingest_series(unit, now - 2 * 86_400_000, now, settings)  # markets, warm caches
    started = time.perf_counter()
    report = ingest_series(unit, now - 32 * 86_400_000, now - 2 * 86_400_000, settings)
    return report.requests / (time.perf_counter() - started)


def test_two_processes_use_most_of_the_budget_and_never_earn_a_429(lab):
    pace = _pages_per_second(lab)  # two processes do not beat one: the simulator needs the cores
    window = min(max(PAGES_PER_WINDOW / (0.6 * pace), 4.0), 20.0)
    scale = window / 60
    lab.sim.limits = Limits(time_scale=scale, enforce=True)
    lab.settings()  # the settings file carries the same time scale
    days = math.ceil(2.5 * PAGES_PER_WINDOW / len(UNITS) * 1000 / 1440)  # 2.5 budgets of pages
    now = lab.sim.now_ms()
    start = (math.floor(time.time() / window) + 1) * window
    if start - time.time() < 2.0:  # leave the processes time to import
        start += window
    lab.sim.clear_requests()
    workers = [
        run_backfill(lab.env(), now - days * 86_400_000, now, UNITS[i::2], "--start-at", str(start))
        for i in range(2)
    ]
    results = [w.communicate(timeout=180) for w in workers]
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert all(json.loads(line)["status"] == "ok" for line in out.splitlines()[1:]), out

    statuses = [r["status"] for r in lab.sim.requests]
    assert statuses.count(429) == 0 and statuses.count(418) == 0
    use = lab.sim.window_use("binance_usdm")
    windows = sorted(use)
    assert windows[0] == round(start / window) and len(windows) >= 3
    full = [use[w] for w in windows[:-1]]  # the last window is where the work ran out
    assert max(full) <= BUDGET
    assert sum(full) / (BUDGET * len(full)) >= 0.8, (use, window)
