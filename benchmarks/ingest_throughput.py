#!/usr/bin/env python
"""Ingest throughput: candles/s through the full path vs a bare ccxt paging loop.

Full path: the `ingest_candles` Prefect flow for ONE unit (binance spot BTC/USDT 1m over one
year, 525,600 candles), including paging through ccxt's raw kline method, every request through
the project's guard (breaker, the host-wide rate limiter of `vectorflow.resilience` in `state.db`,
retries; ccxt's own limiter is off), validation, the Parquet writes (zstd, fsync), the catalog
refresh and Prefect's flow/task bookkeeping against a real (test harness) Prefect API.

Bare: `ccxt.binance({'enableRateLimit': False})` pointed at a simulator, `load_markets`,
then `fetch_ohlcv(symbol, '1m', since, limit=1000)` advancing `since` until the year is covered.
(The client also gets `options.fetchMarkets.types = ['spot', 'linear']`, as VectorFlow's own
clients do: the simulator serves no COIN-M `/dapi` endpoints, so the default load_markets fails.)

Both sides fetch the same closed candles, [since, until) with until = the simulator's pinned clock;
the script asserts equal counts and checksums. Each side has its own simulator (same seed and
clock, so the same candles), i.e. its own per-IP weight count: on one simulator the bare loop's
weight reaches the full path's limiter through `X-MBX-USED-WEIGHT-1M`, and with ~9 runs a minute
a full run now and then waits out the rest of the minute. Sides alternate, the median of the
repetitions is the headline figure (best also shown). Prefect's start-up is timed and printed
separately.

Diagnostics (not part of the headline ratio): the time the full path spent in the project's
limiter (`RateLimiter.acquire` and `record` wrapped with timers; waiting = acquire minus its
SQLite reservation attempts `_try`), the binance spot weight it reserved per run as a fraction of
the 6000/min budget (and of the budget at the run's pace), and, when the ratio misses the target,
a cProfile of the library call the flow's task makes (`ingest_series`, same unit and range) with
its top costs.

Run from anywhere:  python benchmarks/ingest_throughput.py [--reps 3] [--days 365] [--no-profile]
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

TARGET = 0.8
SIM_NOW = "2026-06-01T00:00:00Z"  # pinned: both sides fetch exactly the same candles
UNIT_ARGS = dict(exchange="binance", market="spot", symbol="BTC/USDT", timeframe="1m")
SPOT_BUDGET, SPOT_LIMIT = "binance_spot", 6000  # weight per minute (vectorflow.exchanges.specs)

TMP = Path(tempfile.mkdtemp(prefix="vf-bench-throughput-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_HOME"] = str(TMP / "prefect-home")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"  # run logs still go to the API
for _key in [k for k in os.environ if k.startswith("VECTORFLOW_")]:
    del os.environ[_key]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root (flows/, tasks/)

import ccxt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import vectorflow.exchanges.client as vf_client  # noqa: E402
from vectorflow.config import load_settings  # noqa: E402
from vectorflow.exchanges.urls import override_api_urls  # noqa: E402
from vectorflow.pipelines.candles import ingest_series  # noqa: E402
from vectorflow.resilience.limiter import RateLimiter  # noqa: E402
from vectorflow.sim import ExchangeSimulator  # noqa: E402
from vectorflow.timeframes import ms_to_iso  # noqa: E402
from vectorflow.units import Unit  # noqa: E402

STEP = 60_000


# ---------------------------------------------------------------- instrumentation


class LimiterClock:
    """Time spent in the project's limiter (acquire, its `_try`s, record); spot weight reserved."""

    METHODS = ("acquire", "_try", "record")

    def __init__(self) -> None:
        self.reset()
        for name in self.METHODS:
            setattr(RateLimiter, name, self._timed(name, getattr(RateLimiter, name)))

    def _timed(self, name: str, original):
        def timed(limiter, *args, **kwargs):
            started = time.perf_counter()
            try:
                result = original(limiter, *args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1
            if name == "acquire":
                self.weight += sum(w for budget, w in result.charges if budget == SPOT_BUDGET)
            return result

        return timed

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.METHODS, 0.0)
        self.calls = dict.fromkeys(self.METHODS, 0)
        self.weight = 0

    def snapshot(self) -> dict:
        """In the limiter (acquire + record), waiting (acquire - _try), waits, spot weight."""
        s, c = self.seconds, self.calls
        return {
            "limiter_seconds": s["acquire"] + s["record"],
            "wait_seconds": s["acquire"] - s["_try"],
            "waits": c["_try"] - c["acquire"],
            "weight": self.weight,
        }


def kline_requests(sim: ExchangeSimulator) -> int:
    return sum(1 for r in sim.requests if r["path"].endswith("/klines"))


# ---------------------------------------------------------------- the two sides


def run_bare(sim: ExchangeSimulator, since: int, until: int) -> dict:
    """The bare ccxt loop; returns count, seconds, requests and a checksum of what it fetched."""
    sim.clear_requests()
    started = time.perf_counter()
    exchange = ccxt.binance(
        {
            "enableRateLimit": False,
            "options": {"fetchMarkets": {"types": ["spot", "linear"]}, "defaultType": "spot"},
        }
    )
    exchange.urls["api"] = override_api_urls(exchange.urls["api"], sim.url)
    exchange.load_markets()
    kept: list[list] = []
    cursor = since
    while cursor < until:
        rows = exchange.fetch_ohlcv("BTC/USDT", "1m", cursor, limit=1000)
        if not rows:
            break
        kept.extend(r for r in rows if r[0] >= since and r[0] + STEP <= until)  # closed, in range
        cursor = rows[-1][0] + STEP
        if len(rows) < 1000:
            break
    seconds = time.perf_counter() - started
    times = np.array([r[0] for r in kept], dtype=np.int64)
    closes = np.array([r[4] for r in kept], dtype=np.float64)
    return {
        "candles": len(kept),
        "seconds": seconds,
        "requests": kline_requests(sim),
        "check": (int(times[0]), int(times[-1]), float(closes.sum())),
    }


def run_full(sim: ExchangeSimulator, since: int, until: int, limiter: LimiterClock) -> dict:
    """The `ingest_candles` flow for one unit into a fresh data dir."""
    from flows.ingest import ingest_candles

    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=TMP))
    vf_client.forget_markets()  # each run loads markets like a fresh scheduled process
    sim.clear_requests()
    limiter.reset()
    started = time.perf_counter()
    state = ingest_candles(
        exchanges=[UNIT_ARGS["exchange"]],
        markets=[UNIT_ARGS["market"]],
        symbols=[UNIT_ARGS["symbol"]],
        timeframes=[UNIT_ARGS["timeframe"]],
        since=ms_to_iso(since),
        until=ms_to_iso(until),
        data_dir=str(data_dir),
        return_state=True,
    )
    seconds = time.perf_counter() - started
    if not state.is_completed():
        raise SystemExit(f"full path failed: {state.message}")
    (row,) = state.result()
    paths = sorted(data_dir.glob("lake/candles/*/*/*/*/current/2*.parquet"))
    table = pa.concat_tables(
        pq.ParquetFile(p).read(columns=["open_time", "close"]) for p in paths
    ).sort_by("open_time")
    times = table["open_time"].cast("int64").to_numpy()
    check = (int(times[0]), int(times[-1]), float(table["close"].to_numpy().sum()))
    files = len(paths)
    shutil.rmtree(data_dir)
    return {
        "candles": row["rows_written"],
        "seconds": seconds,
        "requests": kline_requests(sim),
        "check": check,
        "ingest_seconds": row["seconds"],
        "files": files,
        "stored": table.num_rows,
        **limiter.snapshot(),
    }


# ---------------------------------------------------------------- profile


def profile_library(sim: ExchangeSimulator, since: int, until: int) -> None:
    """cProfile of `ingest_series` (what the flow's task calls), top costs printed."""
    import cProfile
    import pstats

    data_dir = Path(tempfile.mkdtemp(prefix="data-profile-", dir=TMP))
    settings = load_settings(data_dir, env={"VECTORFLOW_BINANCE_URL": sim.url})
    vf_client.forget_markets()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    report = ingest_series(Unit(**UNIT_ARGS), since, until, settings, clock=sim.now_ms)
    profiler.disable()
    wall = time.perf_counter() - started
    shutil.rmtree(data_dir)
    stats = pstats.Stats(profiler)
    table = stats.stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}

    def matches(key, name: str, file_part: str) -> bool:
        return key[2] == name and file_part in key[0]

    def cum(name: str, file_part: str = "") -> float:
        return sum(v[3] for k, v in table.items() if matches(k, name, file_part))

    def cum_from(name: str, file_part: str, caller: str, caller_file: str) -> float:
        """Cumulative time of `name` when called from `caller`."""
        return sum(
            c[3]
            for k, v in table.items()
            if matches(k, name, file_part)
            for ck, c in v[4].items()
            if matches(ck, caller, caller_file)
        )

    print(
        f"\nprofile: ingest_series under cProfile, {report.rows_written:,} candles, "
        f"{report.requests} requests, {wall:.2f} s wall (profiler overhead included)"
    )
    groups = [
        (
            "project rate limiter (RateLimiter.acquire + record, SQLite state.db)",
            cum("acquire", "limiter.py") + cum("record", "limiter.py"),
        ),
        (
            "HTTP round trip (requests/urllib3; simulator answering, same process)",
            cum("request", "requests/sessions.py"),
        ),
        ("ccxt JSON decode of responses (parse_json)", cum("parse_json", "ccxt")),
        ("parse kline rows to float64 arrays (parse_binance)", cum("parse_binance", "klines.py")),
        ("validate pages (validate)", cum("validate", "klines.py")),
        (
            "gap counting + buffering (_SeriesWriter.add, its flushes excluded)",
            cum("add", "ingest.py") - cum_from("flush", "ingest.py", "add", "ingest.py"),
        ),
        (
            "Arrow table + Parquet zstd write + fsync (_SeriesWriter.flush)",
            cum("flush", "ingest.py"),
        ),
    ]
    for label, seconds in groups:
        print(f"  {seconds:7.2f} s  {seconds / wall:6.1%}  {label}")
    print("top 12 functions by own time:")
    top = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in top:
        where = name if file == "~" else f"{Path(file).name}:{line}({name})"
        print(f"  {tottime:7.2f} s own {cumtime:7.2f} s cum {ncalls:8d} calls  {where}")


# ---------------------------------------------------------------- main


def main() -> int:
    try:
        return run()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each side (>= 2)")
    parser.add_argument("--days", type=int, default=365, help="days of 1m candles (365: 525,600)")
    parser.add_argument("--no-profile", action="store_true", help="skip the diagnostic profile")
    args = parser.parse_args()
    reps = max(2, args.reps)

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    sim = ExchangeSimulator(now=SIM_NOW).start()  # the full path's
    bare_sim = ExchangeSimulator(now=SIM_NOW).start()
    until = sim.now_ms()
    since = until - args.days * 86_400_000
    print(
        f"ingest throughput: binance spot BTC/USDT 1m, [{ms_to_iso(since)}, {ms_to_iso(until)}), "
        f"simulator {sim.url}, clock pinned at {SIM_NOW}"
    )
    print(
        f"python {sys.version.split()[0]}, ccxt {ccxt.__version__}, {os.cpu_count()} cores, "
        f"temp dir {TMP}"
    )
    # warm the simulators (each generates a series on first use) and the imports, untimed
    for server in (sim, bare_sim):
        warm = ccxt.binance(
            {"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["spot", "linear"]}}}
        )
        warm.urls["api"] = override_api_urls(warm.urls["api"], server.url)
        warm.load_markets()
        warm.fetch_ohlcv("BTC/USDT", "1m", since, limit=1000)
    limiter = LimiterClock()

    started = time.perf_counter()
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with prefect_test_harness(server_startup_timeout=120):
            startup = time.perf_counter() - started
            print(f"prefect test harness start-up: {startup:.2f} s (not counted)")
            os.environ["VECTORFLOW_BINANCE_URL"] = sim.url
            os.environ["VECTORFLOW_BYBIT_URL"] = sim.url
            import flows.ingest  # noqa: F401  (import cost not counted either)

            bare, full = [], []
            print(
                f"\n{'run':<12}{'candles':>10}{'requests':>10}{'seconds':>10}{'candles/s':>12}"
                f"   notes"
            )
            for i in range(reps):
                for side in ("bare", "full"):
                    if side == "bare":
                        result = run_bare(bare_sim, since, until)
                        bare.append(result)
                        note = ""
                    else:
                        result = run_full(sim, since, until, limiter)
                        full.append(result)
                        note = (
                            f"ingest_series {result['ingest_seconds']:.2f} s, of which limiter "
                            f"{result['limiter_seconds']:.2f} s (waiting "
                            f"{result['wait_seconds']:.2f} s); "
                            f"Prefect+catalog {result['seconds'] - result['ingest_seconds']:.2f}"
                            f" s; {result['files']} files"
                        )
                    print(
                        f"{side} #{i + 1:<7}{result['candles']:>10,}{result['requests']:>10}"
                        f"{result['seconds']:>10.2f}{result['candles'] / result['seconds']:>12,.0f}"
                        f"   {note}"
                    )

            counts = {r["candles"] for r in bare + full} | {r["stored"] for r in full}
            checks = {r["check"] for r in bare + full}
            assert len(counts) == 1, f"candle counts differ: {counts}"
            assert len(checks) == 1, f"the two sides fetched different candles: {checks}"
            candles = counts.pop()
            assert candles >= 500_000 or args.days < 365, candles

    med_bare = statistics.median(r["seconds"] for r in bare)
    med_full = statistics.median(r["seconds"] for r in full)
    best_bare = min(r["seconds"] for r in bare)
    best_full = min(r["seconds"] for r in full)
    requests = full[0]["requests"]
    print(
        f"\ncandles per run: {candles:,} (equal on both sides: count, first/last open time and "
        f"sum of closes checked); kline requests per run: {requests}"
    )
    print(f"{'':<14}{'median s':>10}{'median c/s':>12}{'best s':>10}{'best c/s':>12}")
    for name, med, best in (("bare ccxt", med_bare, best_bare), ("full flow", med_full, best_full)):
        print(f"{name:<14}{med:>10.2f}{candles / med:>12,.0f}{best:>10.2f}{candles / best:>12,.0f}")
    ratio = med_bare / med_full
    print(
        f"ratio full/bare (candles/s, medians of {reps}): {ratio:.2f}   "
        f"(best-of-{reps}: {best_bare / best_full:.2f})   target >= {TARGET}: "
        f"{'MET' if ratio >= TARGET else 'MISSED'}"
    )
    print("\nthe project's rate limiter in the full path (medians):")
    med = {k: statistics.median(r[k] for r in full) for k in ("limiter_seconds", "wait_seconds")}
    print(
        f"  in the limiter {med['limiter_seconds']:.2f} s ({med['limiter_seconds'] / med_full:.0%}"
        f" of the run), of which waiting {med['wait_seconds']:.2f} s; waits per run: "
        f"{', '.join(str(r['waits']) for r in full)}"
    )
    weight = statistics.median(r["weight"] for r in full)
    pace = weight / med_full * 60
    print(
        f"  binance spot budget: {weight:,.0f} weight per run = {weight / SPOT_LIMIT:.2f} of "
        f"{SPOT_LIMIT}/min; at the run's pace {pace:,.0f}/min = {pace / SPOT_LIMIT:.2f} of it "
        f"(sustained, the budget caps the path at {candles / weight * SPOT_LIMIT / 60:,.0f} "
        f"candles/s)"
    )
    if ratio < TARGET and not args.no_profile:
        profile_library(sim, since, until)
    sim.stop()
    bare_sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
