#!/usr/bin/env python
"""Lake on S3 vs on local disk: ingest throughput (candles/s) through the library's ingest.

Both sides run exactly the same work through `vectorflow.pipelines.candles.ingest_series`: four
series of 1m candles (Binance and Bybit, spot and perpetual BTC/USDT), a first run of `--days`
days (one file per series), then `--runs` incremental runs of `--minutes` candles per series
(the simulator's clock advanced between runs, as a scheduled deployment sees it). Every
incremental run lands one new small file per series, and ingest merges a period's small files
once there are `merge_files` (8) of them (with 30 days the first run's 43,200-row file is still
"small", under `merge_rows` = 50,000, so each merge rewrites it too), so the figure holds both
the bulk upload and the per-write cost of many small writes. Local: the lake in `<data
dir>/lake` (temp file, fsync, rename, per-partition snapshots). S3: the lake at
`VECTORFLOW_LAKE_URL=s3:// <bucket>/lake` on `vectorflow.sim.s3.LocalS3` (moto's S3 server),
where every file is an upload of a temp object (multipart: create, part, complete), a server-
side copy, a delete and pyarrow's re-creation of the folder marker
(`vectorflow.lake.files.put_object`), every planning step lists the partition, and every merge
reads its inputs through DuckDB.

Each side has its own simulator (`vectorflow.sim.ExchangeSimulator`, default seed, clock set
to the same start), warmed before the timed runs (series generated, imports, S3 client), so
both fetch the same candles. The sides alternate (ABBA) over `--reps` repetitions, each in a
fresh data dir (and, for S3, a fresh bucket); the headline is the ratio of the medians, S3
candles/s divided by local candles/s, over the ingest time (first run + incremental runs).
After each run the catalog is refreshed and both sides must end with the same rows: count,
distinct keys, a checksum of the `candles` view (sum of a hash of key and OHLCV) and the first
and last open time, asserted equal. Also printed, not in the ratio: the first run alone, the
median incremental unit run with and without a merge, the catalog refresh (views built: a
fresh data dir), one `compact_lake` of the candles (the view checked again after it), and the
S3 requests of each step (counted from moto's request log).

moto runs in this same process, on loopback (127.0.0.1): no network latency, no bandwidth
limit, but its request handling (Python, werkzeug) shares the GIL and the 2 cores with the
ingest. So the figure is the protocol's per-request cost (signing, an HTTP round trip per
request, the multipart upload + server-side copy + delete per file, listings, the merges'
reads) plus moto's own CPU, not what a real S3 costs. On AWS a request takes ~10-30 ms in the
bucket's region (more from outside it) instead of ~3-5 ms here, so the small writes, which are
a dozen requests each and a few hundred per merge, will weigh far more and the ratio will be
lower; the first run depends on bandwidth instead. Multiply the printed request counts by the
real round trip for an estimate, and re-measure against the real bucket before sizing one.

Run from anywhere:  python benchmarks/lake_s3.py [--reps 3] [--days 30] [--runs 24]
                                                 [--minutes 144] [--no-compact]
Everything is written into a temporary folder that is removed at the end (moto's buckets live
in memory and go with the process).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TMP = Path(tempfile.mkdtemp(prefix="vf-bench-lake-s3-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_HOME"] = str(TMP / "prefect-home")
for _key in [k for k in os.environ if k.startswith(("VECTORFLOW_", "AWS_"))]:
    del os.environ[_key]  # AWS_* too: only LocalS3's variables reach the S3 client
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance-metadata probe for credentials
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import pyarrow.fs as pafs  # noqa: E402

from vectorflow.config import load_settings  # noqa: E402
from vectorflow.lake.catalog import connect, refresh_catalog  # noqa: E402
from vectorflow.lake.compact import compact_lake  # noqa: E402
from vectorflow.lake.storage.local import SnapshotVersion  # noqa: E402
from vectorflow.lake.storage.objects import ObjectVersion  # noqa: E402
from vectorflow.pipelines.candles import ingest_series  # noqa: E402
from vectorflow.sim import ExchangeSimulator  # noqa: E402
from vectorflow.sim.s3 import LocalS3  # noqa: E402
from vectorflow.timeframes import ms_to_iso, parse_time  # noqa: E402
from vectorflow.units import Unit  # noqa: E402

END = "2026-06-01T00:00:30Z"
MINUTE, DAY = 60_000, 86_400_000
UNITS = [
    Unit(exchange, market, symbol, "1m")
    for exchange in ("binance", "bybit")
    for market, symbol in (("spot", "BTC/USDT"), ("linear", "BTC/USDT:USDT"))
]
CHECK = """
SELECT count(*), count(DISTINCT (exchange, market, symbol, timeframe, open_time)),
       sum(hash(exchange, market, symbol, timeframe, open_time, open, high, low, close,
                volume))::VARCHAR,
       min(open_time)::VARCHAR, max(open_time)::VARCHAR
FROM candles"""
SIDES = ("local", "s3")


class S3Requests(logging.Handler):
    """Requests moto's server answered, by kind: counted from werkzeug's request log.

    werkzeug prints every request to stderr when its logger has no handler; this one counts
    them instead (a LogRecord each, nothing printed). LIST is a GET of the bucket with
    `list-type`; a copy is a PUT too.
    """

    LINE = re.compile(r"(GET|HEAD|PUT|POST|DELETE) (\S+)")
    STYLE = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours non-200 answers

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: dict[str, int] = {}
        logger = logging.getLogger("werkzeug")
        logger.setLevel(logging.INFO)
        logger.addHandler(self)
        logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        match = self.LINE.search(self.STYLE.sub("", str(args[0]) if args else str(record.msg)))
        kind = "other" if match is None else match[1]
        if kind == "GET" and "list-type=" in match[2]:
            kind = "LIST"
        if len(args) > 1 and str(args[1])[:1] in "45":
            kind += f" {args[1]}"
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def total(self) -> int:
        return sum(self.counts.values())


class WriteCounter:
    """Files the lake's partition writers wrote (ingest's new files and merges, compaction)."""

    def __init__(self) -> None:
        self.count = 0
        for version in (SnapshotVersion, ObjectVersion):
            version.write = self._counted(version.write)

    def _counted(self, write):
        def counted(*args, **kwargs):
            self.count += 1
            return write(*args, **kwargs)

        return counted


def use_side(side: str, sim: ExchangeSimulator, lake_env: dict[str, str]) -> None:
    """Point this process at one side: its simulator, and the lake on disk or in the bucket.

    `refresh_catalog`, `connect` and `load_settings` read os.environ (the S3 client too).
    """
    for key in [k for k in os.environ if k.startswith(("VECTORFLOW_", "AWS_"))]:
        del os.environ[key]
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["VECTORFLOW_BINANCE_URL"] = sim.url
    os.environ["VECTORFLOW_BYBIT_URL"] = sim.url
    if side == "s3":
        os.environ.update(lake_env)


def ingest(
    data_dir: Path, sim: ExchangeSimulator, start: int, args, s3req: S3Requests, writes
) -> dict:
    """The first run and the incremental runs of every unit: seconds, files, S3 requests."""
    settings = load_settings(data_dir)
    rows = requests = 0
    plain: list[tuple[float, int]] = []  # incremental unit runs: (seconds, S3 requests)
    merging: list[tuple[float, int]] = []  # ... those that also merged small files

    def one(unit: Unit, since: int | None) -> None:
        nonlocal rows, requests
        files, asked, started = writes.count, s3req.total(), time.perf_counter()
        report = ingest_series(unit, since, sim.now_ms(), settings, clock=sim.now_ms)
        seconds = time.perf_counter() - started
        assert report.status == "ok", f"{unit.label}: {report.status} {report.error}"
        rows += report.rows_written
        requests += report.requests
        if since is None:
            (merging if writes.count - files > 1 else plain).append(
                (seconds, s3req.total() - asked)
            )

    sim.set_now(start)
    s3req.counts.clear()
    writes.count = 0
    started = time.perf_counter()
    for unit in UNITS:
        one(unit, start - args.days * DAY)
    bulk = time.perf_counter() - started
    bulk_rows, bulk_s3 = rows, s3req.total()
    for k in range(1, args.runs + 1):
        sim.set_now(start + k * args.minutes * MINUTE)
        for unit in UNITS:
            one(unit, None)
    total = time.perf_counter() - started
    return {
        "bulk": bulk,
        "incremental": total - bulk,
        "seconds": total,
        "rows": rows,
        "bulk_rows": bulk_rows,
        "requests": requests,
        "writes": writes.count,
        "s3_bulk": bulk_s3,
        "s3_requests": s3req.total(),
        "s3_methods": dict(s3req.counts),
        "plain": plain,
        "merging": merging,
    }


def check(data_dir: Path) -> tuple:
    con = connect(load_settings(data_dir), read_only=True)
    try:
        return tuple(con.execute(CHECK).fetchone())
    finally:
        con.close()


def lake_files(data_dir: Path, side: str, bucket: str) -> int:
    """Data files of the candles dataset now (on disk: the published snapshots)."""
    if side == "s3":
        fs = pafs.S3FileSystem(  # LocalS3's endpoint, from the variables use_side set
            endpoint_override=os.environ["AWS_ENDPOINT_URL"].removeprefix("http://"),
            scheme="http",
            region="us-east-1",
        )
        infos = fs.get_file_info(pafs.FileSelector(f"{bucket}/lake/candles", recursive=True))
        names = [i.base_name for i in infos if i.type == pafs.FileType.File]
    else:
        names = [p.name for p in (data_dir / "lake" / "candles").glob("*/*/*/*/current/*")]
    return sum(n.endswith(".parquet") and not n.startswith("_") for n in names)


def run_side(side, rep, sim, s3, start, args, writes: WriteCounter, s3req: S3Requests) -> dict:
    bucket = f"vf-bench-{rep}-{side}"
    use_side(side, sim, s3.lake_env(bucket) if side == "s3" else {})
    data_dir = TMP / f"{side}-{rep}"
    result = ingest(data_dir, sim, start, args, s3req, writes)
    s3req.counts.clear()
    started = time.perf_counter()
    refresh_catalog(load_settings(data_dir))
    result["catalog"] = time.perf_counter() - started
    result["s3_catalog"] = s3req.total()
    result["check"] = check(data_dir)
    result["files"] = lake_files(data_dir, side, bucket)
    if args.compact:
        s3req.counts.clear()
        started = time.perf_counter()
        compact_lake(load_settings(data_dir), ["candles"])
        result["compact"] = time.perf_counter() - started
        result["s3_compact"] = s3req.total()
        result["check_compacted"] = check(data_dir)
        result["files_compacted"] = lake_files(data_dir, side, bucket)
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


def warm(sims: dict, s3: LocalS3, end: int) -> None:
    """Generate each simulator's series to the last run's end, warm imports and the S3 client."""
    for side, sim in sims.items():
        use_side(side, sim, s3.lake_env(f"vf-bench-warm-{side}") if side == "s3" else {})
        sim.set_now(end)
        settings = load_settings(TMP / f"warm-{side}")
        for unit in UNITS:
            report = ingest_series(unit, end - DAY, end, settings, clock=sim.now_ms)
            assert report.status == "ok", f"warm-up {unit.label}: {report.error}"
        refresh_catalog(load_settings(TMP / f"warm-{side}"))
        check(TMP / f"warm-{side}")
        shutil.rmtree(TMP / f"warm-{side}", ignore_errors=True)


def med(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per side")
    parser.add_argument("--days", type=int, default=30, help="days of the first run")
    parser.add_argument("--runs", type=int, default=24, help="incremental runs after it")
    parser.add_argument("--minutes", type=int, default=144, help="new candles per run and series")
    parser.add_argument(
        "--no-compact", dest="compact", action="store_false", help="skip the compaction comparison"
    )
    args = parser.parse_args()

    end = parse_time(END)
    start = end - args.runs * args.minutes * MINUTE
    import moto
    import pyarrow

    print(
        f"lake on S3 vs local disk: {len(UNITS)} series of 1m candles, first run "
        f"[{ms_to_iso(start - args.days * DAY)}, {ms_to_iso(start)}), then {args.runs} runs of "
        f"{args.minutes} candles per series to {ms_to_iso(end)}"
    )
    print(
        f"python {sys.version.split()[0]}, pyarrow {pyarrow.__version__}, duckdb "
        f"{duckdb.__version__}, moto {moto.__version__}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}, temp dir {TMP}"
    )
    writes, s3req = WriteCounter(), S3Requests()
    sims = {side: ExchangeSimulator(now=start).start() for side in SIDES}
    with LocalS3() as s3:
        print(f"LocalS3 (moto, this process) at {s3.url}")
        started = time.perf_counter()
        warm(sims, s3, end)
        print(
            f"warm-up (simulators' series, imports, S3 client): {time.perf_counter() - started:.1f}"
            " s, not counted"
        )
        results: dict[str, list[dict]] = {side: [] for side in SIDES}
        print(
            f"\n{'run':<9}{'candles':>9}{'first run':>10}{'increm.':>9}{'ingest':>8}"
            f"{'candles/s':>10}{'writes':>7}{'S3 req':>7}{'catalog':>8}{'compact':>8}"
            f"{'files':>9}"
        )
        for rep in range(args.reps):
            order = SIDES if rep % 2 == 0 else SIDES[::-1]  # ABBA: neither side always first
            for side in order:
                r = run_side(side, rep, sims[side], s3, start, args, writes, s3req)
                results[side].append(r)
                compact = f"{r['compact']:>7.2f}s" if args.compact else f"{'-':>8}"
                files = f"{r['files']}>{r['files_compacted']}" if args.compact else r["files"]
                print(
                    f"{side + ' #' + str(rep + 1):<9}{r['rows']:>9,}{r['bulk']:>9.2f}s"
                    f"{r['incremental']:>8.2f}s{r['seconds']:>7.2f}s"
                    f"{r['rows'] / r['seconds']:>10,.0f}{r['writes']:>7}{r['s3_requests']:>7}"
                    f"{r['catalog']:>7.2f}s{compact}{files:>9}"
                )
    for sim in sims.values():
        sim.stop()
    report(results, args)
    return 0


def report(results: dict[str, list[dict]], args) -> None:
    everything = results["local"] + results["s3"]
    checks = {r["check"] for r in everything}
    assert len(checks) == 1, f"the sides ended with different candles: {checks}"
    count, distinct, checksum, first, last = checks.pop()
    assert count == distinct, f"{count - distinct} duplicate keys in the candles view"
    landed = {r["rows"] for r in everything}
    assert landed == {count}, f"rows landed {landed} != rows in the view {count}"
    writes = {r["writes"] for r in everything}
    assert len(writes) == 1, f"the sides wrote different numbers of files: {writes}"
    assert all(r["s3_requests"] == 0 for r in results["local"]), "the local side used S3"
    if args.compact:
        compacted = {r["check_compacted"] for r in everything}
        assert compacted == {(count, distinct, checksum, first, last)}, (
            f"compaction changed the candles: {compacted}"
        )
    print(
        f"\nboth sides, every run: {count:,} candles, {distinct:,} distinct keys, checksum "
        f"{checksum}, {first} .. {last}" + (" (the same after compaction)" if args.compact else "")
    )

    local, s3 = results["local"], results["s3"]
    print(f"\nmedians of {args.reps:<8}{'local':>10}{'s3':>10}{'s3/local':>10}")
    phases = [
        ("bulk", "first run s"),
        ("incremental", "incremental s"),
        ("seconds", "ingest s"),
        ("catalog", "catalog refresh s"),
    ]
    if args.compact:
        phases.append(("compact", "compaction s"))
    for key, label in phases:
        a, b = med(local, key), med(s3, key)
        print(f"{label:<18}{a:>10.2f}{b:>10.2f}{b / a:>9.2f}x")

    print("\nincremental unit runs (fetch 1 page, land 1 file), medians over every run and rep:")
    for kind, label in (("plain", "one new file"), ("merging", "+ merge of 8 small files")):
        ms = {
            side: statistics.median(t for r in results[side] for t, _ in r[kind]) * 1000
            for side in SIDES
            if any(r[kind] for r in results[side])
        }
        if len(ms) < 2:
            continue
        asked = statistics.median(n for r in s3 for _, n in r[kind])
        runs = len(s3[0][kind])
        print(
            f"  {label:<26} local {ms['local']:7.1f} ms, s3 {ms['s3']:7.1f} ms "
            f"(+{ms['s3'] - ms['local']:.1f} ms, {asked:.0f} S3 requests; {runs} such runs)"
        )
    methods = ", ".join(f"{m} {n}" for m, n in sorted(s3[0]["s3_methods"].items()))
    print(
        f"files written per ingest {writes.pop()} (first run, runs, merges); exchange requests "
        f"{local[0]['requests']}; S3 requests: ingest {med(s3, 's3_requests'):.0f} ({methods}), "
        f"catalog refresh {med(s3, 's3_catalog'):.0f}"
        + (f", compaction {med(s3, 's3_compact'):.0f}" if args.compact else "")
    )
    bulk = {side: med(results[side], "bulk_rows") / med(results[side], "bulk") for side in SIDES}
    print(
        f"first run alone: local {bulk['local']:,.0f} candles/s, s3 {bulk['s3']:,.0f} candles/s"
        f" -> {bulk['s3'] / bulk['local']:.2f}"
    )
    rate = {side: count / med(results[side], "seconds") for side in SIDES}
    best = {side: count / min(r["seconds"] for r in results[side]) for side in SIDES}
    print(
        f"\ningest throughput: local {rate['local']:,.0f} candles/s, s3 {rate['s3']:,.0f} "
        f"candles/s (medians of {args.reps}) -> ratio s3/local {rate['s3'] / rate['local']:.2f}"
        f"   (best-of-{args.reps}: {best['s3'] / best['local']:.2f})"
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
