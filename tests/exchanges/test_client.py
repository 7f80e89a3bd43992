"""Markets are loaded once per run and cached on disk with an expiry."""

from __future__ import annotations

import os
import time

from tests.conftest import sim_settings
from vectorflow.exchanges.client import connect, forget_markets


def _market_requests(sim) -> int:
    return sum(
        1 for r in sim.requests if "exchangeInfo" in r["path"] or "instruments-info" in r["path"]
    )


def test_markets_load_once_then_come_from_memory_and_disk_until_they_expire(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    for exchange in ("binance", "bybit"):
        connect(exchange, settings)
    loaded = _market_requests(fresh_sim)
    assert loaded == 2 + 3  # binance: spot + USDⓈ-M exchangeInfo; bybit: spot + linear pages
    for _ in range(5):
        connect("binance", settings)  # the same process: from memory
    forget_markets()
    client = connect("bybit", settings)  # a "new process": from the disk cache
    assert "BTC/USDT:USDT" in client.markets
    assert _market_requests(fresh_sim) == loaded

    cached = list(settings.cache_dir.glob("markets-bybit-*.json"))
    assert len(cached) == 1
    expired = time.time() - settings.markets_cache_hours * 3600 - 60
    os.utime(cached[0], (expired, expired))
    forget_markets()
    connect("bybit", settings)
    assert _market_requests(fresh_sim) == loaded + 3
