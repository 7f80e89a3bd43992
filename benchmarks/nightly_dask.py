#!/usr/bin/env python
"""The nightly backtests of 20 series on the default grids: one worker vs two Dask workers.

Data: the exchange simulator's generator (`vectorflow.sim.series.History`, block-bootstrapped
from the bundled real candles): every real series it lists (BTC, ETH, SOL, XRP on Binance and
Bybit spot and perpetual, BNB on Binance: 18) at 1h, plus Binance's BTC and ETH perpetuals at 4h
= 20 series of `--days` days (200), and 30m candles beside them for the TPO signals. The signals
are stored first (what the nightly's "signals refresh" step leaves), so the timed part is the
`nightly-backtests` subflow: per series a plan task, one task per strategy (7) on the default
grid with the default walk-forward (12 windows of 20 + 7 days), a landing task.

Sides, each on a fresh copy of the data dir, alternating `--reps` times (median):

- 1 worker: the default `[backtest] dask_address = ""`, the flow's own process, one task at a
  time (vectorbt's numba kernels hold the GIL: threads would not help);
- 2 Dask workers: a `LocalCluster(n_workers=2, threads_per_worker=1, processes=True)` on
  127.0.0.1, its address as `dask_address` (as a cluster on other hosts would be given).
  Each worker process compiles vectorbt's kernels once (`simulate_from_signals_nb` is not in
  numba's cache) and loads Prefect's task engine on its first task: a warm-up on every worker
  and one series through the flow, printed and not counted, as the 1-worker side's warm-up in
  this process.

Both sides' leaderboards are checked equal. The speed-up (1 worker / 2 workers) is printed.
Prefect's test harness is the API (heartbeats off; its start-up is printed, not counted).

Run from anywhere:  python benchmarks/nightly_dask.py [--reps 1] [--days 200] [--workers 2]
                    [--series 20]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root (flows/, tasks/)

NOW = "2026-06-01T12:02:30Z"
BASES = ("BTC", "ETH", "SOL", "XRP", "BNB")
VENUES = (("binance", "spot"), ("binance", "linear"), ("bybit", "spot"), ("bybit", "linear"))
EXTRA_4H = (("binance", "linear", "BTC"), ("binance", "linear", "ETH"))


SERIES = 20  # --series N takes the first N (quick trials)


def series_list() -> list[tuple[str, str, str, str]]:
    """(exchange, market, base, timeframe) of the 20 series (or the first --series)."""
    from vectorflow.sim.series import SYMBOLS

    found = [
        (exchange, market, base, "1h")
        for base in BASES
        for exchange, market in VENUES
        if (exchange, market) in SYMBOLS[f"{base}USDT"].grids
    ]
    return (found + [(e, m, b, "4h") for e, m, b in EXTRA_4H])[:SERIES]


def unified(base: str, market: str) -> str:
    return f"{base}/USDT" if market == "spot" else f"{base}/USDT:USDT"


def store_candles(lake: Path, days: int) -> int:
    """Every series' last `days` days of closed candles (and 30m for TPO) into the lake."""
    import numpy as np
    import pyarrow as pa

    from vectorflow.lake.files import partition_dir
    from vectorflow.lake.schema import CANDLES
    from vectorflow.lake.storage import LocalStorage
    from vectorflow.lake.store import append
    from vectorflow.sim.series import History
    from vectorflow.timeframes import parse_time, timeframe_ms

    now = parse_time(NOW)
    history = History(seed=7, now_ms=now)
    wanted = {(e, m, b, tf) for e, m, b, tf in series_list()}
    wanted |= {(e, m, b, "30m") for e, m, b, _ in wanted}
    rows = 0
    for exchange, market, base, timeframe in sorted(wanted):
        series = history.series(exchange, market, f"{base}USDT")
        series.ensure(now)
        start, step, table = series.table(timeframe)
        closed = min(len(table["c"]), (now - start) // step)
        first = max(0, closed - days * 86_400_000 // timeframe_ms(timeframe))
        n = closed - first
        times = start + np.arange(first, closed) * step
        price = {k: table[c][first:closed] * series.tick for k, c in
                 (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"))}  # fmt: skip
        volume = table["v"][first:closed] * series.step
        data = {
            "exchange": [exchange] * n,
            "market": [market] * n,
            "symbol": [unified(base, market)] * n,
            "timeframe": [timeframe] * n,
            "open_time": pa.array(times, pa.int64()).cast(pa.timestamp("ms")),
            **price,
            "volume": volume,
            "quote_volume": volume * price["close"],
            "trades": pa.nulls(n, pa.int64()),
            "taker_buy_volume": pa.nulls(n, pa.float64()),
            "ingested_at": pa.array(np.full(n, now), pa.int64()).cast(pa.timestamp("ms")),
        }
        values = {"exchange": exchange, "market": market, "symbol_id": f"{base}USDT",
                  "timeframe": timeframe}  # fmt: skip
        storage = LocalStorage(lake, lake.parent)
        append(storage, CANDLES, partition_dir(lake, CANDLES, values),
               pa.Table.from_pydict(data, schema=CANDLES.schema), merge_rows=0, merge_files=0,
               grace_seconds=0)  # fmt: skip
        rows += n
    return rows


def settings_file(dask_address: str) -> str:
    entries = ", ".join(
        f'{{exchange = "{e}", market = "{m}", symbol = "{unified(b, m)}", timeframe = "{tf}"}}'
        for e, m, b, tf in series_list()
    )
    return f'[backtest]\ndask_address = "{dask_address}"\nseries = [{entries}]\n'


def store_signals(data_dir: Path) -> None:
    """What the nightly's signals refresh leaves: every series' signals in the lake."""
    from vectorflow.config import load_settings
    from vectorflow.pipelines.signals import update_signals
    from vectorflow.units import Unit

    settings = load_settings(data_dir, env={})
    for exchange, market, base, timeframe in series_list():
        update_signals(Unit(exchange, market, unified(base, market), timeframe), settings)


def fresh_copy(template: Path, target: Path, dask_address: str) -> Path:
    shutil.copytree(template, target, symlinks=True)
    (target / "vectorflow.toml").write_text(settings_file(dask_address))
    return target


def run_backtests(data_dir: Path, series: list | None = None) -> tuple[float, dict]:
    """Wall seconds of the nightly-backtests subflow (runner from the data dir's settings)."""
    from flows.nightly import nightly_backtests
    from flows.runners import backtest_task_runner
    from vectorflow.backtest.run import configured_series
    from vectorflow.config import load_settings

    settings = load_settings(data_dir, env={})
    series = series or configured_series(settings)
    flow = nightly_backtests.with_options(
        task_runner=backtest_task_runner(settings.backtest.dask_address)
    )
    started = time.perf_counter()
    outcome = flow(series, data_dir=str(data_dir))
    seconds = time.perf_counter() - started
    if outcome["failed"]:
        raise SystemExit(f"series failed: {outcome['failed']}")
    return seconds, outcome


def warm_worker(data_dir: str) -> float:
    """Compile every kernel the nightly's strategies use (the first series, its default grids
    and windows, nothing landed) and load the report's plotting: a Dask worker's warm-up."""
    import vectorflow.backtest.report  # noqa: F401 - plotly, as the landing task needs it
    from vectorflow.backtest.run import (
        BacktestRequest,
        configured_series,
        plan_series,
        run_strategy,
    )
    from vectorflow.config import load_settings

    started = time.perf_counter()
    settings = load_settings(data_dir, env={})
    plan = plan_series(settings, BacktestRequest(configured_series(settings)[0]))
    for name in plan.strategies:
        run_strategy(plan, name)
    return time.perf_counter() - started


def configured_series_of(data_dir: Path) -> list:
    from vectorflow.backtest.run import configured_series
    from vectorflow.config import load_settings

    return configured_series(load_settings(data_dir, env={}))


def boards(outcome: dict) -> list:
    return [(s["exchange"], s["market"], s["symbol"], s["timeframe"], s["leaderboard"])
            for s in outcome["series"]]  # fmt: skip


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="vf-bench-nightly-dask-"))
    try:
        return run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1, help="repetitions of each side")
    parser.add_argument("--days", type=int, default=200, help="days of candles per series")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--series", type=int, default=SERIES, help="the first N series only")
    args = parser.parse_args()
    globals()["SERIES"] = args.series

    os.environ.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
                      PREFECT_HOME=str(tmp / "prefect-home"),
                      PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW="ignore",
                      PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING",
                      DASK_DISTRIBUTED__LOGGING__DISTRIBUTED="warning")  # fmt: skip
    for key in [k for k in os.environ if k.startswith("VECTORFLOW_")]:
        del os.environ[key]
    from vectorflow.numba_cache import use_numba_cache

    use_numba_cache()  # NUMBA_CACHE_DIR before vectorbt loads, inherited by the Dask workers
    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    template = tmp / "template"
    started = time.perf_counter()
    rows = store_candles(template / "lake", args.days)
    (template / "vectorflow.toml").write_text(settings_file(""))
    store_signals(template)
    print(f"{len(series_list())} series, {args.days} days, {rows:,} candles (with 30m for TPO), "
          f"signals stored: {time.perf_counter() - started:.1f} s; python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        started = time.perf_counter()
        with prefect_test_harness(server_startup_timeout=120):
            print(f"prefect test harness start-up: {time.perf_counter() - started:.1f} s")
            print(f"warm-up of this process (numba compile, not counted): "
                  f"{warm_worker(str(template)):.1f} s")  # fmt: skip
            started = time.perf_counter()
            with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None) as cluster, \
                    Client(cluster) as client:  # fmt: skip
                warm = client.run(warm_worker, str(template))
                # and Prefect's task engine in each worker: one series through the flow
                data = fresh_copy(template, tmp / "warm", cluster.scheduler_address)
                run_backtests(data, configured_series_of(data)[:1])
                print(f"{args.workers} Dask workers up and warm (not counted): "
                      f"{time.perf_counter() - started:.1f} s (each worker's compile: "
                      f"{', '.join(f'{s:.1f} s' for s in warm.values())})")  # fmt: skip
                one, many, first = [], [], None
                for rep in range(args.reps):
                    data = fresh_copy(template, tmp / f"one-{rep}", "")
                    seconds, outcome = run_backtests(data)
                    first = first or boards(outcome)
                    assert boards(outcome) == first, "1-worker leaderboards differ between reps"
                    one.append(seconds)
                    print(f"  1 worker        : {seconds:6.1f} s  "
                          f"({sum(s['runs'] for s in outcome['series']):,} runs; "
                          f"load {os.getloadavg()[0]:.1f})")  # fmt: skip
                    data = fresh_copy(template, tmp / f"dask-{rep}", cluster.scheduler_address)
                    seconds, outcome = run_backtests(data)
                    assert boards(outcome) == first, "the Dask run's leaderboards differ"
                    many.append(seconds)
                    print(f"  {args.workers} Dask workers : {seconds:6.1f} s  "
                          f"(leaderboards identical; load {os.getloadavg()[0]:.1f})")  # fmt: skip
    a, b = statistics.median(one), statistics.median(many)
    print(f"\nmedian of {args.reps}: 1 worker {a:.1f} s vs {args.workers} Dask workers {b:.1f} s "
          f"-> speed-up {a / b:.2f}x on {os.cpu_count()} cores "
          f"(load average now {os.getloadavg()[0]:.1f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
