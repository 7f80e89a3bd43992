#!/usr/bin/env python
"""Lake query cost: the catalog views after many incremental runs and after compaction, against
one optimally written Parquet file of the same rows.

The lake holds four series of 1m candles (Binance and Bybit, spot and perpetual BTC/USDT):
a first run of `--days` days, then `--runs` incremental runs of `--minutes` minutes each (the
simulator's clock advanced between runs, as a scheduled deployment sees it), all through the
library's ingest (`ingest_series`), so the files are what users get: many small files, merged
by ingest every `merge_files` of them (each write publishes a new snapshot of its partition).
Then `vectorflow compact` (`compact_lake`) rewrites them.

Queries, through the catalog views (read-only, as users open it):
  Q1  hourly OHLCV resampled from 1m candles, one series, last 30 days
  Q2  row count per series over everything
The baseline runs the same queries on one Parquet file of the same rows (sorted by series and
time, zstd, 122,880-row groups) read directly, with no deduplication at all. Each query runs
`--reps` times per lake, interleaved; medians are compared. Also shown, after compaction: the
same files read with a plain `read_parquet` (what the file count costs, with no view logic),
and the foundation's view (QUALIFY row_number() over the key on every row) over them.

Run from anywhere:  python benchmarks/lake_query.py [--runs 300] [--days 30] [--reps 15]
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

TMP = Path(tempfile.mkdtemp(prefix="vf-bench-lake-"))
for _key in [k for k in os.environ if k.startswith("VECTORFLOW_")]:
    del os.environ[_key]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from vectorflow.config import load_settings  # noqa: E402
from vectorflow.lake.catalog import connect, refresh_catalog  # noqa: E402
from vectorflow.lake.compact import compact_lake, partition_folders  # noqa: E402
from vectorflow.lake.schema import CANDLES  # noqa: E402
from vectorflow.lake.storage.snapshots import effective_grace  # noqa: E402
from vectorflow.pipelines.candles import ingest_series  # noqa: E402
from vectorflow.sim import ExchangeSimulator  # noqa: E402
from vectorflow.timeframes import parse_time  # noqa: E402
from vectorflow.units import Unit  # noqa: E402

TARGET_BEFORE, TARGET_AFTER = 3.0, 1.2
END = "2026-06-01T00:00:30Z"
MINUTE, DAY = 60_000, 86_400_000
UNITS = [
    Unit(exchange, market, symbol, "1m")
    for exchange in ("binance", "bybit")
    for market, symbol in (("spot", "BTC/USDT"), ("linear", "BTC/USDT:USDT"))
]
Q1 = """
SELECT date_trunc('hour', open_time) AS hour, arg_min(open, open_time) AS open, max(high) AS high,
       min(low) AS low, arg_max(close, open_time) AS close, sum(volume) AS volume
FROM {source}
WHERE exchange = 'binance' AND market = 'linear' AND symbol = 'BTC/USDT:USDT'
  AND timeframe = '1m' AND open_time >= TIMESTAMP '{start}' AND open_time < TIMESTAMP '{end}'
GROUP BY ALL ORDER BY hour"""
Q2 = "SELECT exchange, market, symbol, timeframe, count(*) FROM {source} GROUP BY ALL ORDER BY ALL"


def build(data_dir: Path, runs: int, minutes: int, days: int) -> None:
    """A first run of `days`, then `runs` incremental runs of `minutes` per series."""
    end = parse_time(END)
    start = end - runs * minutes * MINUTE
    with ExchangeSimulator(now=start) as sim:
        env = {"VECTORFLOW_BINANCE_URL": sim.url, "VECTORFLOW_BYBIT_URL": sim.url}
        settings = load_settings(data_dir, env=env)
        started = time.perf_counter()
        for unit in UNITS:
            ingest_series(unit, start - days * DAY, sim.now_ms(), settings, clock=sim.now_ms)
        for k in range(1, runs + 1):
            sim.set_now(start + k * minutes * MINUTE)
            for unit in UNITS:
                ingest_series(unit, None, sim.now_ms(), settings, clock=sim.now_ms)
        print(f"built the lake by {runs} incremental runs in {time.perf_counter() - started:.0f} s")
    # Runs minutes apart remove superseded snapshots on their next write; here runs follow
    # each other at once, so do that step once at the end, as the next run would.
    time.sleep(effective_grace(settings.lake.delete_grace_seconds))
    for folder in partition_folders(settings.storage, CANDLES):
        with settings.storage.lock(folder):
            settings.storage.tidy(folder, settings.lake.delete_grace_seconds)


def files_of(data_dir: Path) -> str:
    names = [p.name for p in (data_dir / "lake" / "candles").glob("*/*/*/*/current/*.parquet")]
    data = [n for n in names if not n.startswith("_")]
    compacted = sum(n.endswith(".compact.parquet") for n in data)
    return f"{len(data)} files ({compacted} compacted)"


def timings(sources: dict[str, tuple], reps: int) -> dict[tuple[str, str], float]:
    """Median seconds per (source, query); the sources run interleaved, rep by rep."""
    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(reps + 1):
        for name, (con, source) in sources.items():
            for qname, query in (("Q1", Q1), ("Q2", Q2)):
                sql = query.format(source=source, start=START, end=END_Q)
                started = time.perf_counter()
                con.execute(sql).fetchall()
                if rep:  # the first round warms caches
                    times.setdefault((name, qname), []).append(time.perf_counter() - started)
    return {key: statistics.median(values) for key, values in times.items()}


def single_file(data_dir: Path, target: Path) -> None:
    con = connect(load_settings(data_dir), read_only=True)
    con.execute(
        f"COPY (SELECT * FROM candles ORDER BY exchange, market, symbol, timeframe, open_time) "
        f"TO '{target}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
    )
    con.close()


def plain_read(data_dir: Path) -> str:
    """Every file of the lake read as it is: what the files cost, without any view logic."""
    glob = data_dir / "lake" / "candles" / "*" / "*" / "*" / "*" / "current" / "*.parquet"
    return f"read_parquet('{glob}', union_by_name = true, hive_partitioning = false)"


def naive_view(data_dir: Path) -> str:
    glob = data_dir / "lake" / "candles" / "*" / "*" / "*" / "*" / "current" / "*.parquet"
    key = ", ".join(CANDLES.key)
    return (
        f"(SELECT * FROM read_parquet('{glob}', union_by_name = true, hive_partitioning = false) "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ingested_at DESC) = 1)"
    )


def main() -> None:
    global START, END_Q
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--minutes", type=int, default=144, help="new candles per run and series")
    parser.add_argument("--days", type=int, default=30, help="days of the first run")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.keep:
        print(f"keeping {TMP}")
        globals()["KEEP"] = True
    end = parse_time(END)
    START = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((end - 30 * DAY) / 1000))
    END_Q = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(end / 1000))
    data_dir = TMP / "data"
    build(data_dir, args.runs, args.minutes, args.days)
    refresh_catalog(load_settings(data_dir))
    single = TMP / "single.parquet"
    single_file(data_dir, single)
    rows = duckdb.sql(f"SELECT count(*) FROM '{single}'").fetchall()[0][0]
    print(f"{rows:,} candles in 4 series; before compaction: {files_of(data_dir)}")

    base = duckdb.connect()
    base.execute("SET TimeZone = 'UTC'")
    lake = connect(load_settings(data_dir), read_only=True)
    before = timings({"single": (base, f"'{single}'"), "lake": (lake, "candles")}, args.reps)
    lake.close()
    started = time.perf_counter()
    compact_lake(load_settings(data_dir), ["candles"])
    print(f"compacted in {time.perf_counter() - started:.1f} s: {files_of(data_dir)}")
    lake = connect(load_settings(data_dir), read_only=True)
    naive = duckdb.connect()
    after = timings(
        {
            "single": (base, f"'{single}'"),
            "lake": (lake, "candles"),
            "plain": (naive, plain_read(data_dir)),
            "naive": (naive, naive_view(data_dir)),
        },
        args.reps,
    )
    print(
        f"\n{'query':<5} {'single file':>12} {'before':>9} {'after':>9} {'ratio before':>13} "
        f"{'ratio after':>12} {'files as they are':>18} {'QUALIFY view':>13}"
    )
    worst_before = worst_after = 0.0
    for q in ("Q1", "Q2"):
        one = min(before[("single", q)], after[("single", q)])
        rb, ra = before[("lake", q)] / one, after[("lake", q)] / one
        worst_before, worst_after = max(worst_before, rb), max(worst_after, ra)
        print(
            f"{q:<5} {one * 1000:>10.1f}ms {before[('lake', q)] * 1000:>7.1f}ms "
            f"{after[('lake', q)] * 1000:>7.1f}ms {rb:>12.2f}x {ra:>11.2f}x "
            f"{after[('plain', q)] / one:>17.2f}x {after[('naive', q)] / one:>12.2f}x"
        )
    print(
        f"\nworst ratio to the single file: before compaction {worst_before:.2f}x "
        f"(target <= {TARGET_BEFORE}), after {worst_after:.2f}x (target <= {TARGET_AFTER})"
    )


if __name__ == "__main__":
    try:
        main()
    finally:
        if not globals().get("KEEP"):
            shutil.rmtree(TMP, ignore_errors=True)
