"""Many workers: the repo's deployments, unchanged, on a Prefect server backed by PostgreSQL with
two process workers on one pool; a burst of concurrent candle runs (overlapping series, through
both candle deployments, beside the deployments' own scheduled runs) all complete and land each
candle exactly once.

PostgreSQL is Debian's `postgresql` package (`.ci/run` installs it); the test starts a server of
its own on a free port and skips, saying why, when the package is missing.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.conftest import SIM_NOW, query_catalog, sim_settings
from tests.ops.helpers import deployments, postgres_server, running_stack, trigger, wait_run
from vectorflow.pipelines.candles import ingest_series
from vectorflow.timeframes import ms_to_iso, parse_time
from vectorflow.units import Unit

ROOT = Path(__file__).resolve().parents[2]
#: the flows that write candles; their deployments are found in prefect.yaml by entrypoint
CANDLE_FLOWS = ("flows/ingest.py:ingest_candles", "flows/backfill.py:backfill_candles")
#: overlapping sets of series: every series is in two of them
SERIES_SETS = (
    {"exchanges": ["binance"], "symbols": ["BTC/USDT", "BTC/USDT:USDT"]},
    {"exchanges": ["binance", "bybit"], "symbols": ["BTC/USDT"]},
    {"exchanges": ["bybit"], "symbols": ["BTC/USDT", "BTC/USDT:USDT"]},
    {"exchanges": ["binance", "bybit"], "symbols": ["BTC/USDT:USDT"]},
)
RUNS = len(SERIES_SETS)  # alternating between the candle deployments
KEY = "exchange, market, symbol, timeframe, open_time"


def candle_deployments() -> list[str]:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = [d["name"] for d in spec["deployments"] if d["entrypoint"] in CANDLE_FLOWS]
    assert "ingest-candles" in names
    return names


def _reference(sim, data_dir: Path, since: int) -> None:
    """The same series landed by one process, one at a time: what the lake must hold."""
    settings = sim_settings(sim, data_dir)
    for exchange in ("binance", "bybit"):
        for symbol, market in (("BTC/USDT", "spot"), ("BTC/USDT:USDT", "linear")):
            unit = Unit(exchange, market, symbol, "1h")
            assert ingest_series(unit, since, parse_time(SIM_NOW), settings).rows_written > 500


async def _stored_runs(database_url: str, ids: list[str]) -> int:
    import asyncpg

    con = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT count(*) FROM flow_run WHERE id::text = ANY($1::text[])"
        return await con.fetchval(query, ids)
    finally:
        await con.close()


@pytest.mark.slow
def test_two_workers_on_postgres_land_a_burst_of_runs_once(sim, tmp_path):
    with postgres_server() as database_url, running_stack(
        sim, tmp_path, "--workers", "2", "--worker-limit", "1", processes=4,
        env={"PREFECT_API_DATABASE_CONNECTION_URL": database_url,
             # a run queued behind its deployment's concurrency limit retries every 2 s, not 30
             "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"},
    ) as (api, data_dir, _):  # fmt: skip
        names = candle_deployments()
        found = deployments(api)
        assert set(names) <= set(found)
        first, _ = sim.bundled_range("1h")
        since = ms_to_iso(first)
        burst = [
            (names[i % len(names)],
             {**SERIES_SETS[i % len(SERIES_SETS)], "timeframes": ["1h"], "since": since})
            for i in range(RUNS)
        ]  # fmt: skip
        started = time.monotonic()
        with ThreadPoolExecutor(RUNS) as pool:  # all at once, as from several browser tabs
            ids = list(pool.map(lambda run: trigger(api, found[run[0]], run[1]), burst))
        _reference(sim, tmp_path / "reference" / "data", first)  # meanwhile, in this process
        runs = [wait_run(api, flow_run_id, timeout_s=150) for flow_run_id in ids]
        seconds = time.monotonic() - started
        states = [(r["name"], r["state"]["type"], r["state"]["message"]) for r in runs]
        assert all(state == "COMPLETED" for _, state, _ in states), states
        # a worker tries every scheduled run it sees; the server gives each to one worker (the
        # other's "Aborted submission", as for a run queued behind a concurrency limit)
        logs = [(data_dir / "run" / f"worker-{n}.log").read_text() for n in (1, 2)]
        started = [sum(log.count(f"submitting flow run '{i}'")
                       - log.count(f"Aborted submission of flow run '{i}'") for i in ids)
                   for log in logs]  # fmt: skip
        print(f"{RUNS} runs in {seconds:.0f} s; started by worker 1 / 2: {started}")
        assert sum(started) == RUNS  # each triggered run ran once, on one worker
        assert min(started) > 0  # one run at a time per worker: both workers had runs
        assert asyncio.run(_stored_runs(database_url, ids)) == RUNS  # the server's is PostgreSQL

    # the scheduled runs' series too
    every = query_catalog(data_dir, f"SELECT {KEY} FROM candles", frame=True)
    assert len(every) > 0 and not every.duplicated().any()
    ours = "WHERE timeframe = '1h' AND symbol IN ('BTC/USDT', 'BTC/USDT:USDT')"
    query = f"SELECT * EXCLUDE (ingested_at) FROM candles {ours} ORDER BY {KEY}"
    candles = query_catalog(data_dir, query, frame=True)
    expected = query_catalog(tmp_path / "reference" / "data", query, frame=True)
    assert len(candles) == len(expected) > 4 * 500
    assert candles.equals(expected)
    ((dupes,),) = query_catalog(data_dir, "SELECT count(*) - count(DISTINCT (exchange, market, "
                                "symbol, timeframe, as_of)) FROM signals")  # fmt: skip
    assert dupes == 0
