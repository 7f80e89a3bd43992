#!/usr/bin/env python
"""Playbooks for 20 series against a fake LLM answering in 1 s each: concurrent vs sequential.

The `generate-playbooks` Prefect flow (real test-harness API, heartbeats off) writes Grok
playbooks for 20 series (binance and bybit, spot and linear, five symbols, 1h) from hand-made
candles in a temporary lake, against `vectorflow.sim.FakeLLM` on 127.0.0.1 with 1 s of latency
per chat completion. Each run reads the candles, computes the signals, builds the payload, asks
the fake LLM (over a socket), validates the answer and lands the rows; then the catalog is
refreshed (it exists already, as for any scheduled run). Timed: the flow call, with the default
concurrency (`[playbooks] concurrency`) and with one worker (sequential), each in a fresh copy
of the data dir so no answer comes from the cache.
The headline is the concurrent wall time (target <= 3 s); the sequential time is printed beside
it with the ratio. A one-series warm-up run (imports, numba's cache) is not counted.

Run from anywhere:  python benchmarks/playbooks_concurrency.py [--reps 3] [--latency 1.0]
Everything is written into a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 3.0
TMP = Path(tempfile.mkdtemp(prefix="vf-bench-playbooks-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_HOME"] = str(TMP / "prefect-home")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
for _key in [k for k in os.environ if k.startswith(("VECTORFLOW_", "XAI_"))]:
    del os.environ[_key]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root (flows/, tasks/)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from vectorflow.lake.files import partition_dir  # noqa: E402
from vectorflow.lake.schema import CANDLES  # noqa: E402
from vectorflow.lake.storage import LocalStorage  # noqa: E402
from vectorflow.lake.store import append  # noqa: E402
from vectorflow.playbooks.reads import symbol_id  # noqa: E402
from vectorflow.sim.llm import FakeLLM  # noqa: E402
from vectorflow.timeframes import ms_to_iso  # noqa: E402

HOUR = 3_600_000
AS_OF = 1_780_000_000_000 // HOUR * HOUR
EXCHANGES, MARKETS = ["binance", "bybit"], ["spot", "linear"]
BASES = ["BTC", "ETH", "SOL", "XRP", "BNB"]


def symbols() -> list[str]:
    """Spot and linear symbols of the five bases (10; x2 exchanges = 20 series)."""
    return [f"{b}/USDT" for b in BASES] + [f"{b}/USDT:USDT" for b in BASES]


def store_series(lake: Path, bars: int = 600) -> int:
    """Hand-made hourly candles (seeded random walks) for every series, ending at AS_OF."""
    count = 0
    for e, exchange in enumerate(EXCHANGES):
        for s, symbol in enumerate(symbols()):
            rng = np.random.default_rng(100 * e + s)
            close = 100.0 * (s + 1) * np.exp(np.cumsum(rng.normal(0, 0.004, bars)))
            open_ = np.r_[close[0], close[:-1]]
            wick = close * np.abs(rng.normal(0, 0.002, bars))
            times = AS_OF - HOUR * np.arange(bars, 0, -1)
            market = "linear" if ":" in symbol else "spot"
            table = pa.Table.from_pydict(
                {
                    "exchange": [exchange] * bars,
                    "market": [market] * bars,
                    "symbol": [symbol] * bars,
                    "timeframe": ["1h"] * bars,
                    "open_time": pa.array(times, pa.int64()).cast(pa.timestamp("ms")),
                    "open": open_,
                    "high": np.maximum(open_, close) + wick,
                    "low": np.minimum(open_, close) - wick,
                    "close": close,
                    "volume": rng.uniform(10, 20, bars),
                    "quote_volume": close * 15,
                    "trades": pa.nulls(bars, pa.int64()),
                    "taker_buy_volume": pa.nulls(bars, pa.float64()),
                    "ingested_at": pa.array(np.full(bars, AS_OF), pa.int64()).cast(
                        pa.timestamp("ms")
                    ),
                },
                schema=CANDLES.schema,
            )
            values = {
                "exchange": exchange,
                "market": market,
                "symbol_id": symbol_id(symbol),
                "timeframe": "1h",
            }
            folder = partition_dir(lake, CANDLES, values)
            append(LocalStorage(lake, lake.parent), CANDLES, folder, table, merge_rows=0,
                   merge_files=0, grace_seconds=0)  # fmt: skip
            count += 1
    return count


def fresh_data_dir(template: Path, name: str) -> Path:
    """A copy of the candle-only data dir: no cached answer from an earlier run."""
    target = TMP / name
    shutil.copytree(template, target, symlinks=True)
    return target


def run_flow(data_dir: Path, workers: int, series: dict) -> tuple[float, list[dict]]:
    """Wall seconds of one generate-playbooks flow run with `workers` concurrent series."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.playbooks import generate_playbooks

    runner = generate_playbooks.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    started = time.perf_counter()
    state = runner(**series, as_of=ms_to_iso(AS_OF), data_dir=str(data_dir), return_state=True)
    seconds = time.perf_counter() - started
    rows = state.result(raise_on_failure=False)
    if isinstance(rows, BaseException) or not state.is_completed():
        raise SystemExit(f"the flow failed: {state.message}")
    return seconds, rows


def main() -> int:
    try:
        return run()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each side")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per LLM answer")
    args = parser.parse_args()

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from vectorflow.config import load_settings
    from vectorflow.lake.catalog import refresh_catalog

    template = TMP / "template"
    count = store_series(template / "lake")
    refresh_catalog(load_settings(template))  # a scheduled run finds its catalog built
    default_workers = load_settings(template).playbooks.concurrency
    series = dict(exchanges=EXCHANGES, markets=MARKETS, symbols=symbols(), timeframes=["1h"])
    print(
        f"playbooks for {count} series (1h, as of {ms_to_iso(AS_OF)}), fake LLM answering in "
        f"{args.latency:.1f} s; python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    with FakeLLM(latency=args.latency) as llm:
        os.environ["XAI_API_KEY"] = "benchmark-fake-key"
        os.environ["XAI_BASE_URL"] = llm.url
        started = time.perf_counter()
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            with prefect_test_harness(server_startup_timeout=120):
                print(f"prefect test harness start-up: {time.perf_counter() - started:.2f} s")
                warm = dict(series, exchanges=["binance"], symbols=["BTC/USDT"])
                warm_s, _ = run_flow(fresh_data_dir(template, "warm"), default_workers, warm)
                print(f"warm-up (1 series, not counted): {warm_s:.2f} s")
                concurrent, sequential = [], []
                for rep in range(args.reps):
                    llm.reset()
                    seconds, rows = run_flow(
                        fresh_data_dir(template, f"c{rep}"), default_workers, series
                    )
                    asked = len(llm.chat_requests)
                    statuses = sorted({r["status"] for r in rows})
                    concurrent.append(seconds)
                    print(
                        f"  concurrency {default_workers:>2}: {seconds:6.2f} s  "
                        f"({len(rows)} playbooks, {asked} LLM requests, statuses {statuses})"
                    )
                    seconds, rows = run_flow(fresh_data_dir(template, f"s{rep}"), 1, series)
                    sequential.append(seconds)
                    print(f"  sequential    : {seconds:6.2f} s  ({len(rows)} playbooks)")
    best_c, best_s = statistics.median(concurrent), statistics.median(sequential)
    verdict = "met" if best_c <= TARGET_SECONDS else "MISSED"
    print(
        f"\nmedian of {args.reps}: concurrency {default_workers} {best_c:.2f} s vs sequential "
        f"{best_s:.2f} s -> {best_s / best_c:.1f}x faster; target <= {TARGET_SECONDS:.0f} s "
        f"{verdict}"
    )
    return 0 if best_c <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
