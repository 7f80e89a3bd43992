#!/usr/bin/env python
"""Incremental cost: a scheduled run with nothing new, with 10x more stored history vs 1x.

Two data dirs hold one series (binance spot BTC/USDT 1m), both landed by many incremental runs
with the simulator clock advanced between them (`sim.set_now`), one file per run:

  1x:  N candles in R runs (default 50,000 in 20 runs of 2,500 candles -> 20 files)
  10x: 10 N candles in 10 R runs (500,000 in 200 runs of 2,500 candles -> 200 files)

Both dirs end at the same candle. With the clock NOT advanced, a run then has nothing new; it is
timed many times on each dir, alternating (ABBA order), both through the library
(`ingest_series`, what the flow's task calls) and through the full `ingest_candles` flow on a real
(test harness) Prefect API. Before every timed run the in-process markets memo is cleared, as in a
fresh scheduled process: markets then come from the data dir's disk cache, not the exchange.
Prints median times, the ratio 10x/1x (target <= 1.2) and the kline requests per no-new-data run
read from the simulator's request log (must be <= 1). Prefect's start-up is printed, not counted.

Run from anywhere:  python benchmarks/incremental_cost.py [--candles 50000] [--runs 20] [--reps 30]
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
import timeit
from pathlib import Path

TARGET = 1.2
SIM_END = "2026-06-01T00:00:30Z"  # the clock of the no-new-data runs (mid-candle, as in tests)
UNIT_ARGS = dict(exchange="binance", market="spot", symbol="BTC/USDT", timeframe="1m")
STEP = 60_000

TMP = Path(tempfile.mkdtemp(prefix="vf-bench-incremental-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_HOME"] = str(TMP / "prefect-home")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"  # run logs still go to the API
for _key in [k for k in os.environ if k.startswith("VECTORFLOW_")]:
    del os.environ[_key]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root (flows/, tasks/)

import pyarrow.parquet as pq  # noqa: E402

import vectorflow.exchanges.client as vf_client  # noqa: E402
from vectorflow.config import load_settings  # noqa: E402
from vectorflow.lake.schema import CANDLES  # noqa: E402
from vectorflow.lake.storage import LocalStorage  # noqa: E402
from vectorflow.pipelines.candles import ingest_series  # noqa: E402
from vectorflow.sim import ExchangeSimulator  # noqa: E402
from vectorflow.timeframes import floor_ms, ms_to_iso, parse_time  # noqa: E402
from vectorflow.units import Unit  # noqa: E402

UNIT = Unit(**UNIT_ARGS)


def kline_requests(sim: ExchangeSimulator) -> int:
    return sum(1 for r in sim.requests if r["path"].endswith("/klines"))


def series_folder(data_dir: Path) -> Path:
    return data_dir / "lake/candles/exchange=binance/market=spot/symbol_id=BTCUSDT/timeframe=1m"


def build(
    sim: ExchangeSimulator, dirs: dict[str, Path], runs: dict[str, int], per_run: int, end_ms: int
) -> None:
    """Land both series by incremental runs, advancing the clock `per_run` candles each time."""
    total = max(runs.values())
    first_open = floor_ms(end_ms, "1m") - total * per_run * STEP
    started = time.perf_counter()
    for k in range(1, total + 1):
        sim.set_now(end_ms - (total - k) * per_run * STEP)
        for name, data_dir in dirs.items():
            first_run = total - runs[name] + 1
            if k < first_run:
                continue
            since = first_open + (first_run - 1) * per_run * STEP if k == first_run else None
            settings = load_settings(data_dir, env={"VECTORFLOW_BINANCE_URL": sim.url})
            report = ingest_series(UNIT, since, sim.now_ms(), settings, clock=sim.now_ms)
            assert report.rows_written == per_run and report.detail["gaps"] == 0, report
    assert sim.now_ms() == end_ms
    print(
        f"built both data dirs by {sum(runs.values())} incremental runs in "
        f"{time.perf_counter() - started:.1f} s"
    )


def describe(data_dir: Path) -> tuple[int, int]:
    files = LocalStorage(data_dir / "lake", data_dir).files(series_folder(data_dir), CANDLES)
    rows = sum(pq.ParquetFile(f.path).metadata.num_rows for f in files)
    return len(files), rows


def timed_library(sim: ExchangeSimulator, data_dir: Path) -> tuple[float, int, int]:
    settings = load_settings(data_dir, env={"VECTORFLOW_BINANCE_URL": sim.url})
    vf_client.forget_markets()
    sim.clear_requests()
    started = time.perf_counter()
    report = ingest_series(UNIT, None, sim.now_ms(), settings, clock=sim.now_ms)
    seconds = time.perf_counter() - started
    assert report.rows_written == 0, report
    return seconds, kline_requests(sim), len(sim.requests)


def timed_flow(sim: ExchangeSimulator, data_dir: Path) -> tuple[float, int, int]:
    from flows.ingest import ingest_candles

    vf_client.forget_markets()
    sim.clear_requests()
    started = time.perf_counter()
    state = ingest_candles(
        exchanges=[UNIT.exchange],
        markets=[UNIT.market],
        symbols=[UNIT.symbol],
        timeframes=[UNIT.timeframe],
        data_dir=str(data_dir),
        return_state=True,
    )
    seconds = time.perf_counter() - started
    if not state.is_completed():
        raise SystemExit(f"flow failed: {state.message}")
    (row,) = state.result()
    assert row["rows_written"] == 0, row
    return seconds, kline_requests(sim), len(sim.requests)


def measure(kind: str, fn, sim: ExchangeSimulator, dirs: dict[str, Path], reps: int) -> dict:
    """`reps` timed runs per dir in ABBA order; medians and request counts per dir."""
    times: dict[str, list[float]] = {name: [] for name in dirs}
    klines: dict[str, set[int]] = {name: set() for name in dirs}
    others: dict[str, set[int]] = {name: set() for name in dirs}
    names = list(dirs)
    for name in names:  # one untimed warm-up each (first-call costs: imports, flow registration)
        fn(sim, dirs[name])
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            seconds, kline, total = fn(sim, dirs[name])
            times[name].append(seconds)
            klines[name].add(kline)
            others[name].add(total - kline)
    out = {}
    for name in names:
        values = sorted(times[name])
        out[name] = {
            "median": statistics.median(values),
            "min": values[0],
            "p90": values[int(0.9 * (len(values) - 1))],
            "klines": max(klines[name]),
            "other_requests": max(others[name]),
        }
    return out


def report(kind: str, result: dict, reps: int) -> float:
    one, ten = result["1x"], result["10x"]
    ratio = ten["median"] / one["median"]
    print(f"\n{kind}: {reps} no-new-data runs per dir, alternating")
    print(
        f"  {'':<5}{'median ms':>11}{'min ms':>9}{'p90 ms':>9}{'kline req/run':>15}"
        f"{'other req/run':>15}"
    )
    for name in ("1x", "10x"):
        r = result[name]
        print(
            f"  {name:<5}{r['median'] * 1000:>11.1f}{r['min'] * 1000:>9.1f}{r['p90'] * 1000:>9.1f}"
            f"{r['klines']:>15}{r['other_requests']:>15}"
        )
    ok = ratio <= TARGET
    print(
        f"  ratio 10x/1x (medians): {ratio:.2f}   target <= {TARGET}: {'MET' if ok else 'MISSED'}"
    )
    print(
        f"  kline requests per no-new-data run: max {max(one['klines'], ten['klines'])} "
        f"(must be <= 1: {'OK' if max(one['klines'], ten['klines']) <= 1 else 'FAILED'})"
    )
    return ratio


def main() -> int:
    try:
        return run()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=50_000, help="stored candles in the 1x dir")
    parser.add_argument("--runs", type=int, default=20, help="incremental runs landing the 1x dir")
    parser.add_argument("--reps", type=int, default=30, help="timed no-new-data runs per dir")
    args = parser.parse_args()
    per_run = args.candles // args.runs
    runs = {"1x": args.runs, "10x": 10 * args.runs}

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    end_ms = parse_time(SIM_END)
    sim = ExchangeSimulator(now=SIM_END).start()
    dirs = {name: TMP / f"data-{name}" for name in runs}
    print(
        f"incremental cost: binance spot BTC/USDT 1m, simulator {sim.url}; python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores, temp dir {TMP}"
    )
    build(sim, dirs, runs, per_run, end_ms)
    for name, data_dir in dirs.items():
        files, rows = describe(data_dir)
        lake = LocalStorage(data_dir / "lake", data_dir)
        first, last = lake.stored_range(series_folder(data_dir), CANDLES)
        print(
            f"  {name:<4} {rows:>8,} candles in {files:>4} files, {ms_to_iso(first)} .. "
            f"{ms_to_iso(last)}"
        )
    for name, data_dir in dirs.items():
        folder, lake = series_folder(data_dir), LocalStorage(data_dir / "lake", data_dir)
        stored = lake.stored_range
        cost = timeit.repeat(lambda f=folder, read=stored: read(f, CANDLES), number=20, repeat=15)
        print(
            f"  {name:<4} stored_range (file names -> stored range): "
            f"{statistics.median(cost) / 20 * 1e6:,.0f} us per call"
        )
    print(f"no-new-data runs at clock {ms_to_iso(sim.now_ms())} (not advanced)")

    results = {}
    results["library (ingest_series)"] = measure("library", timed_library, sim, dirs, args.reps)
    ratio_lib = report("library (ingest_series)", results["library (ingest_series)"], args.reps)

    started = time.perf_counter()
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with prefect_test_harness(server_startup_timeout=120):
            print(
                f"\nprefect test harness start-up: {time.perf_counter() - started:.2f} s "
                f"(not counted)"
            )
            os.environ["VECTORFLOW_BINANCE_URL"] = sim.url
            os.environ["VECTORFLOW_BYBIT_URL"] = sim.url
            flow_result = measure("flow", timed_flow, sim, dirs, args.reps)
    ratio_flow = report("full flow (ingest_candles)", flow_result, args.reps)

    print(
        f"\nsummary: ratio 10x/1x library {ratio_lib:.2f}, flow {ratio_flow:.2f} "
        f"(target <= {TARGET})"
    )
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
