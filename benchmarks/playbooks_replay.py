#!/usr/bin/env python
"""A 90-day rules replay of 20 series at 4h through the `replay-playbooks` flow: playbooks/s.

The lake (built first, not timed) holds what a running deployment collects for 20 series
(Binance and Bybit, spot and perpetual, BTC ETH SOL XRP BNB at 4h): 30m candles for 135 days
(seeded random walks shared by the venues of a base, on each market's tick) and the 4h and 1d
candles aggregated from them; the signals of the 4h and 1d series computed by the signals
pipeline (`update_signals`, TPO from the 30m candles); open interest every 5 minutes and funding
every 8 hours for the perpetuals; order-book snapshots of 20 levels per side every minute for
the last 30 days (the default retention). So every section of the payload is read.

Timed: the `replay_playbooks` flow (rules, every 4h, 90 days: 541 as_of times per series,
10,820 playbooks), the default concurrency, each repetition in a fresh copy of the data dir
(nothing resumed). It writes, grades (the last 8 days stay open) and compares; the catalog is
refreshed. Prefect's test harness start-up and a one-series warm-up are printed, not counted.
Target: under 60 s on 2 cores.

Run from anywhere:  python benchmarks/playbooks_replay.py [--reps 3] [--book-days 30]
Everything is written into a temporary folder that is removed at the end (`--template DIR`
builds the lake there once and keeps it for the next run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 60.0
TMP = Path(tempfile.mkdtemp(prefix="vf-bench-replay-"))
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
from vectorflow.lake.schema import (  # noqa: E402
    CANDLES,
    FUNDING_RATES,
    OPEN_INTEREST,
    ORDERBOOK_LEVELS,
)
from vectorflow.lake.storage import LocalStorage  # noqa: E402
from vectorflow.lake.store import append  # noqa: E402
from vectorflow.playbooks.reads import symbol_id  # noqa: E402
from vectorflow.timeframes import ms_to_iso  # noqa: E402

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
END = 1_780_000_000_000 // DAY * DAY  # the lake's data ends here (a UTC midnight)
HISTORY_DAYS, REPLAY_DAYS = 135, 90
BASES = {"BTC": (60_000.0, 0.1), "ETH": (3_000.0, 0.01), "SOL": (150.0, 0.001),
         "XRP": (0.6, 0.0001), "BNB": (600.0, 0.01)}  # fmt: skip
VENUES = [(e, m) for e in ("binance", "bybit") for m in ("spot", "linear")]
LEVELS = 20


def symbol(base: str, market: str) -> str:
    """BTC/USDT (spot) or BTC/USDT:USDT (perpetual)."""
    return f"{base}/USDT" if market == "spot" else f"{base}/USDT:USDT"


def _ts(values) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), pa.int64()).cast(pa.timestamp("ms"))


def _write(lake: Path, dataset, values: dict, columns: dict, times: np.ndarray) -> None:
    """Rows landed as the ingest lands them (a new snapshot of the partition)."""
    n = len(times)
    columns = {k: ([v] * n if isinstance(v, str) else v) for k, v in columns.items()}
    columns["ingested_at"] = _ts(np.full(n, END))
    table = pa.Table.from_pydict(columns, schema=dataset.schema)
    storage = LocalStorage(lake, lake.parent)
    append(storage, dataset, partition_dir(lake, dataset, values), table, merge_rows=0,
           merge_files=0, grace_seconds=0)  # fmt: skip


def _path(base: str, seed: int, bars: int) -> np.ndarray:
    level, _ = BASES[base]
    rng = np.random.default_rng(seed)
    return level * np.exp(np.cumsum(rng.normal(0, 0.003, bars)))


def _bars(close: np.ndarray, tick: float, rng) -> dict[str, np.ndarray]:
    close = np.round(close / tick) * tick
    open_ = np.r_[close[0], close[:-1]]
    wick = np.round(close * np.abs(rng.normal(0, 0.0015, len(close))) / tick) * tick
    return {"open": open_, "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick, "close": close}  # fmt: skip


def _aggregate(times: np.ndarray, ohlcv: dict, step: int) -> tuple[np.ndarray, dict]:
    groups = times // step
    starts = np.flatnonzero(np.r_[True, np.diff(groups) != 0])
    ends = np.r_[starts[1:], len(times)] - 1
    out = {
        "open": ohlcv["open"][starts], "close": ohlcv["close"][ends],
        "high": np.maximum.reduceat(ohlcv["high"], starts),
        "low": np.minimum.reduceat(ohlcv["low"], starts),
        "volume": np.add.reduceat(ohlcv["volume"], starts),
        "quote_volume": np.add.reduceat(ohlcv["quote_volume"], starts),
    }  # fmt: skip
    return groups[starts] * step, out


def store_candles(lake: Path) -> dict:
    """30m, 4h and 1d candles of every venue; the 30m closes by series (for books and OI)."""
    bars = HISTORY_DAYS * 48
    times = END - HISTORY_DAYS * DAY + np.arange(bars) * 1_800_000
    closes = {}
    for b, base in enumerate(BASES):
        shared = _path(base, b, bars)
        for v, (exchange, market) in enumerate(VENUES):
            rng = np.random.default_rng(100 * b + v)
            ohlcv = _bars(shared * (1 + rng.normal(0, 2e-4, bars)), BASES[base][1], rng)
            ohlcv["volume"] = rng.uniform(10, 20, bars)
            ohlcv["quote_volume"] = ohlcv["volume"] * ohlcv["close"]
            closes[(exchange, market, base)] = (times, ohlcv["close"])
            for timeframe, step in (("30m", 1_800_000), ("4h", 4 * HOUR), ("1d", DAY)):
                opens, agg = (times, ohlcv) if step == 1_800_000 else _aggregate(times, ohlcv, step)
                values = {"exchange": exchange, "market": market,
                          "symbol_id": symbol_id(symbol(base, market)), "timeframe": timeframe}
                columns = {**values, "symbol": symbol(base, market), "open_time": _ts(opens),
                           **agg, "trades": pa.nulls(len(opens), pa.int64()),
                           "taker_buy_volume": pa.nulls(len(opens), pa.float64())}  # fmt: skip
                columns.pop("symbol_id")
                _write(lake, CANDLES, values, columns, opens)
    return closes


def store_derivatives(lake: Path, closes: dict) -> None:
    """Open interest every 5 minutes and funding every 8 hours of the perpetuals."""
    for (exchange, market, base), (times, close) in closes.items():
        if market != "linear":
            continue
        rng = np.random.default_rng(hash((exchange, base)) % 2**32)
        oi_times = np.arange(times[0], END, 5 * MINUTE)
        price = np.interp(oi_times, times, close)
        oi = 1e6 / BASES[base][0] * np.exp(np.cumsum(rng.normal(0, 0.002, len(oi_times))))
        values = {"exchange": exchange, "symbol_id": symbol_id(symbol(base, market))}
        _write(lake, OPEN_INTEREST, values | {"period": "5m"},
               {"exchange": exchange, "symbol": symbol(base, market), "period": "5m",
                "time": _ts(oi_times), "open_interest": oi, "open_interest_value": oi * price,
                "value_source": "exchange"}, oi_times)  # fmt: skip
        f_times = np.arange(times[0], END, 8 * HOUR)
        _write(lake, FUNDING_RATES, values,
               {"exchange": exchange, "symbol": symbol(base, market),
                "funding_time": _ts(f_times),
                "funding_rate": rng.normal(1e-4, 5e-5, len(f_times)),
                "interval_hours": np.full(len(f_times), 8.0),
                "mark_price": np.interp(f_times, times, close)}, f_times)  # fmt: skip


def store_books(lake: Path, closes: dict, days: int) -> int:
    """Snapshots of LEVELS levels per side every minute over the last `days` days; rows."""
    rows = 0
    side = np.repeat(np.array(["bid", "ask"]), LEVELS)
    level = np.tile(np.arange(LEVELS, dtype=np.int32), 2)
    for (exchange, market, base), (times, close) in closes.items():
        tick = BASES[base][1]
        rng = np.random.default_rng(hash((exchange, market, base, "book")) % 2**32)
        values = {"exchange": exchange, "market": market,
                  "symbol_id": symbol_id(symbol(base, market))}  # fmt: skip
        for day in range(END - days * DAY, END, DAY):
            snaps = np.arange(day, day + DAY, MINUTE) + 3_000
            mid = np.round(np.interp(snaps, times, close) / tick)
            offset = np.r_[-(np.arange(LEVELS) + 1), np.arange(LEVELS) + 1]
            price = (mid[:, None] + offset[None, :] * max(1, mid[0] // 20_000)) * tick
            n = price.size
            _write(lake, ORDERBOOK_LEVELS, values,
                   {"exchange": exchange, "market": market, "symbol": symbol(base, market),
                    "snapshot_time": _ts(np.repeat(snaps, 2 * LEVELS)),
                    "side": np.tile(side, len(snaps)), "level": np.tile(level, len(snaps)),
                    "price": price.ravel(), "amount": rng.uniform(0.1, 5.0, n) * 1e4 / mid[0],
                    "time_source": "local", "source": "rest", "update_id": pa.nulls(n, pa.int64()),
                    "received_at": _ts(np.repeat(snaps, 2 * LEVELS))},
                   np.repeat(snaps, 2 * LEVELS))  # fmt: skip
            rows += n
    return rows


def build(data_dir: Path, book_days: int) -> None:
    """The lake, its signals and the settings file of the 20 series."""
    from vectorflow.config import load_settings
    from vectorflow.lake.catalog import refresh_catalog
    from vectorflow.pipelines.signals import update_signals
    from vectorflow.units import Unit

    lake = data_dir / "lake"
    started = time.perf_counter()
    closes = store_candles(lake)
    store_derivatives(lake, closes)
    rows = store_books(lake, closes, book_days)
    print(f"lake built in {time.perf_counter() - started:.1f} s ({rows:,} order-book rows)")
    symbols = [symbol(b, m) for b in BASES for m in ("spot", "linear")]
    (data_dir / "vectorflow.toml").write_text(
        '[series]\nexchanges = ["binance", "bybit"]\nmarkets = ["spot", "linear"]\n'
        f'symbols = {json.dumps(symbols)}\ntimeframes = ["4h", "1d"]\n'
    )
    settings = load_settings(data_dir)
    started = time.perf_counter()
    refresh_catalog(settings)
    for base in BASES:
        for exchange, market in VENUES:
            for timeframe in ("4h", "1d"):
                update_signals(Unit(exchange, market, symbol(base, market), timeframe),
                               settings)
    print(f"signals of 40 series (4h, 1d) stored in {time.perf_counter() - started:.1f} s")


def run_replay(data_dir: Path, symbols: list[str] | None = None) -> tuple[float, dict]:
    """Wall seconds of one replay-playbooks flow run (rules, 4h, 90 days), and its report
    (the comparison computed again afterwards, not timed)."""
    from flows.replay import replay_playbooks
    from vectorflow.config import load_settings
    from vectorflow.pipelines.candles import plan_ingest
    from vectorflow.playbooks.replay import replay_plan, replay_report

    start, end = ms_to_iso(END - REPLAY_DAYS * DAY), ms_to_iso(END)
    started = time.perf_counter()
    state = replay_playbooks(
        start=start, end=end, every="4h", source="rules", symbols=symbols, timeframes=["4h"],
        data_dir=str(data_dir), return_state=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    rows = state.result(raise_on_failure=False)
    if isinstance(rows, BaseException) or not state.is_completed():
        raise SystemExit(f"the replay failed: {state.message}")
    settings = load_settings(data_dir)
    units = plan_ingest(**settings.series.pick(None, None, symbols, ["4h"])).units
    plan = replay_plan(units, start, end, "4h", "rules")
    replay_id = plan.replay_id(settings.playbooks.model)
    report = replay_report(settings.storage, plan, replay_id, settings.playbooks.horizon_bars)
    if report["playbooks"] != sum(row["rows_written"] for row in rows):
        raise SystemExit("the replay's unit rows and its stored playbooks disagree")
    return seconds, report


def main() -> int:
    try:
        return run()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="timed replays")
    parser.add_argument("--book-days", type=int, default=30, help="days of order books")
    parser.add_argument("--template", type=Path, help="build the lake here once and keep it")
    args = parser.parse_args()

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    template = args.template or TMP / "template"
    if not (template / "vectorflow.toml").exists():
        build(template, args.book_days)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    timings = []
    started = time.perf_counter()
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with prefect_test_harness(server_startup_timeout=120):
            print(f"prefect test harness start-up: {time.perf_counter() - started:.2f} s")
            warm = shutil.copytree(template, TMP / "warm", symlinks=True)
            seconds, _ = run_replay(warm, symbols=["BTC/USDT"])
            print(f"warm-up (BTC/USDT spot on both exchanges, not counted): {seconds:.2f} s")
            for rep in range(args.reps):
                data_dir = shutil.copytree(template, TMP / f"r{rep}", symlinks=True)
                seconds, report = run_replay(data_dir)
                timings.append(seconds)
                (rules,) = report["comparison"]
                print(
                    f"  replay {rep + 1}: {seconds:6.2f} s  {report['playbooks']:,} playbooks "
                    f"({report['playbooks'] / seconds:,.0f}/s), {report['graded']:,} graded; "
                    f"rules: {rules['directional']} directional, win rate "
                    f"{rules['win_rate']:.2f}, avg R {rules['avg_r']:.3f}"
                )
    median = statistics.median(timings)
    count = report["playbooks"]
    verdict = "met" if median <= TARGET_SECONDS else "MISSED"
    print(
        f"\nmedian of {args.reps}: {median:.2f} s for {count:,} playbooks = "
        f"{count / median:,.0f} playbooks/s; target < {TARGET_SECONDS:.0f} s {verdict}"
    )
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
