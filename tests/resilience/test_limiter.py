"""The host-wide rate limiter: shared budgets, the server's own count, Retry-After for everyone."""

from __future__ import annotations

import json
import math
import threading
import time

import requests

from tests.resilience.conftest import KLINES, run_backfill
from vectorflow.exchanges.specs import exchange_spec
from vectorflow.pipelines.candles import ingest_series
from vectorflow.resilience.guard import Guard
from vectorflow.sim.limits import Limits
from vectorflow.units import Unit

SPOT = exchange_spec("binance").budgets[0]


def test_limiters_in_separate_connections_share_one_budget(lab):
    """Four "processes" (own Guard, own SQLite connection each) never exceed it together."""
    settings = lab.settings(budgets={"binance_spot": 100})
    guards = [Guard(settings) for _ in range(4)]
    stamps: list[float] = []
    stop = time.time() + 2.0

    def reserve(guard: Guard) -> None:
        while time.time() < stop:
            ticket = guard.limiter.acquire("binance", [(SPOT, 5)])
            guard.limiter.record(ticket, [])  # no answer (no usage header): next may go
            stamps.append(ticket.t)

    threads = [threading.Thread(target=reserve, args=(g,)) for g in guards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    window = 60 * lab.scale
    stamps.sort()
    busiest = max(sum(1 for s in stamps if t0 <= s < t0 + window) for t0 in stamps)
    assert busiest * 5 <= 100  # no span of one window holds more than the budget
    most = 100 * (math.floor((stamps[-1] - stamps[0]) / window) + 1)
    assert len(stamps) * 5 >= 0.8 * most  # ...and the budget is used, not wasted


def test_retry_after_holds_every_process_until_it_ends(lab):
    settings = lab.settings()
    lab.sim.fault("rate_limit", KLINES["binance"], retry_after=300)  # 3 s at this scale
    since = lab.sim.now_ms() - 5 * 86_400_000
    unit = Unit("binance", "spot", "ETH/USDT", "1h")
    here = threading.Thread(
        target=ingest_series, args=(unit, since, lab.sim.now_ms(), settings), daemon=True
    )
    here.start()
    while not any(r["status"] == 429 for r in lab.sim.requests):
        time.sleep(0.01)
    (hit,) = [r["wall"] for r in lab.sim.requests if r["status"] == 429]
    other = run_backfill(lab.env(), since, lab.sim.now_ms(), ["binance/spot/SOL/USDT/1h"])
    out, err = other.communicate(timeout=60)
    here.join(timeout=30)
    assert other.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["status"] == "ok"
    after = [r for r in lab.sim.requests if r["exchange"] == "binance" and r["wall"] > hit]
    klines = {r["params"]["symbol"] for r in after if r["path"] == KLINES["binance"]}
    assert klines == {"ETHUSDT", "SOLUSDT"}  # the retry here, the other process's pages
    assert min(r["wall"] for r in after) >= hit + 300 * lab.scale


def test_the_servers_count_of_other_programs_use_is_respected(lab):
    """Another program on this IP used most of the minute: the client reads the header, no 429."""
    lab.sim.limits = Limits(time_scale=0.05, enforce=True)  # a minute lasts 3 s
    settings = lab.settings()
    window = 60 * 0.05
    time.sleep(window - time.time() % window + 0.01)  # the start of a window
    other = requests.Session()
    for _ in range(295):  # 295 x weight 20 = 5900 of 6000
        assert other.get(f"{lab.sim.url}/api/v3/exchangeInfo").status_code == 200
    lab.sim.clear_requests()
    unit = Unit("binance", "spot", "BTC/USDT", "1m")
    now = lab.sim.now_ms()
    report = ingest_series(unit, now - 100 * 86_400_000, now, settings, clock=lab.sim.now_ms)
    assert report.status == "ok" and report.rows_written == 100 * 1440 - 1  # now is mid-minute
    statuses = [r["status"] for r in lab.sim.requests]
    assert 429 not in statuses and 418 not in statuses
    assert len(lab.klines("binance")) == report.requests > 100  # well past what was left
