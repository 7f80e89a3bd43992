#!/usr/bin/env python
"""Signals with lineage: a scheduled run with nothing stale, and a run after a day of late OI.

A lake of 20 series x one year of 1h candles (5 symbols x Binance and Bybit x spot and USDⓈ-M,
from the simulator's own generator, `vectorflow.sim.series.History`, the fifth symbol BTC from
a second seed under another name), each with the same year
at 30m (its TPO candles); the 10 perpetuals also get hourly open interest and 8-hourly funding.
Everything lands through the lake's own append, except the open interest of the last day,
which is held back. One signals run stores every series.

(a) A run with nothing stale or new, over the 20 series one after the other: this version's
    `update_signals` (reads the inputs, compares the stored bars' lineage, computes nothing)
    vs the run before lineage (reads the same inputs, finds the last stored `as_of` from file
    names, calls `signals_update(since=...)`, which computes the whole history and returns no
    row), alternating (ABBA), medians of `--reps`. Target: this version / before <= 1.1.
(b) The held-back day of open interest lands; one run over the 20 series. Prints the rows it
    rewrote per series: only the bars of that day (24 per perpetual, none on spot).
(c) The time of a query of the `signal_coverage` view (what `coverage` adds) over that lake.

Run from anywhere:  python benchmarks/signals_lineage.py [--days 365] [--reps 5]
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

import numpy as np
import pyarrow as pa

TMP = Path(tempfile.mkdtemp(prefix="vf-bench-lineage-"))
for _key in [k for k in os.environ if k.startswith("VECTORFLOW_")]:
    del os.environ[_key]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vectorflow.config import load_settings  # noqa: E402
from vectorflow.lake import store  # noqa: E402
from vectorflow.lake.catalog import read_view  # noqa: E402
from vectorflow.lake.files import partition_dir  # noqa: E402
from vectorflow.lake.schema import CANDLES, FUNDING_RATES, OPEN_INTEREST, SIGNALS  # noqa: E402
from vectorflow.pipelines.lineage import read_inputs  # noqa: E402
from vectorflow.pipelines.signals import series_folders, update_signals  # noqa: E402
from vectorflow.sim.series import History  # noqa: E402
from vectorflow.timeframes import ms_to_iso, parse_time  # noqa: E402
from vectorflow.units import Unit  # noqa: E402

NOW = parse_time("2026-06-01")
HOUR, DAY = 3_600_000, 86_400_000
#: (name in the lake, simulator symbol, generator seed): five bases, all on the four venues
SYMBOLS = (("BTC", "BTC", 1), ("ETH", "ETH", 1), ("SOL", "SOL", 1), ("XRP", "XRP", 1),
           ("BTC2", "BTC", 2))  # fmt: skip
VENUES = (("binance", "spot"), ("binance", "linear"), ("bybit", "spot"), ("bybit", "linear"))
TARGET = 1.1


def _ms(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.timestamp("ms"))


def candles_table(series, unit: Unit, timeframe: str, days: int) -> pa.Table:
    """A year (`days`) of closed candles of one simulator series, in the candles schema."""
    b0, step, tab = series.table(timeframe)
    times = b0 + np.arange(len(tab["o"]), dtype=np.int64) * step
    keep = (times + step <= NOW) & (times >= NOW - days * DAY)
    n = int(keep.sum())
    price = {k: tab[k][keep] * series.tick for k in "ohlc"}
    return pa.table({
        "exchange": [unit.exchange] * n, "market": [unit.market] * n,
        "symbol": [unit.symbol] * n, "timeframe": [timeframe] * n,
        "open_time": _ms(times[keep]),
        "open": price["o"], "high": price["h"], "low": price["l"], "close": price["c"],
        "volume": tab["v"][keep] * series.step, "quote_volume": tab["q"][keep].astype(float),
        "trades": pa.nulls(n, pa.int64()), "taker_buy_volume": pa.nulls(n, pa.float64()),
        "ingested_at": _ms(np.full(n, NOW)),
    }, schema=CANDLES.schema)  # fmt: skip


def derivatives(unit: Unit, closes: np.ndarray, seed: int) -> tuple[pa.Table, pa.Table]:
    """Hourly open interest at the candles' closes and 8-hourly funding, synthetic."""
    rng = np.random.default_rng(seed)
    n = len(closes)
    oi = 1e5 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    oi_table = pa.table({
        "exchange": [unit.exchange] * n, "symbol": [unit.symbol] * n, "period": ["1h"] * n,
        "time": _ms(closes), "open_interest": oi, "open_interest_value": oi * 100.0,
        "value_source": ["exchange"] * n, "ingested_at": _ms(np.full(n, NOW)),
    }, schema=OPEN_INTEREST.schema)  # fmt: skip
    times = np.arange(closes[0] // (8 * HOUR) * 8 * HOUR + 8 * HOUR, NOW, 8 * HOUR)
    m = len(times)
    funding = pa.table({
        "exchange": [unit.exchange] * m, "symbol": [unit.symbol] * m, "funding_time": _ms(times),
        "funding_rate": rng.normal(1e-4, 1.5e-4, m), "interval_hours": np.full(m, 8.0),
        "mark_price": pa.nulls(m, pa.float64()), "ingested_at": _ms(np.full(m, NOW)),
    }, schema=FUNDING_RATES.schema)  # fmt: skip
    return oi_table, funding


def land(settings, dataset, values: dict, table: pa.Table) -> None:
    folder = partition_dir(settings.storage.root, dataset, values)
    store.append(settings.storage, dataset, folder, table, **settings.lake.append_options())


def build(settings, days: int) -> tuple[list[Unit], dict[Unit, pa.Table]]:
    """Land the 20 series; the last day of each perpetual's open interest is held back."""
    histories = {seed: History(seed=seed, now_ms=NOW) for seed in (1, 2)}
    units, held_back = [], {}
    for k, ((symbol, source, seed), (exchange, market)) in enumerate(
        (s, v) for s in SYMBOLS for v in VENUES
    ):
        unified = f"{symbol}/USDT" + (":USDT" if market == "linear" else "")
        unit = Unit(exchange, market, unified, "1h")
        series = histories[seed].series(exchange, market, f"{source}USDT")
        series.ensure(NOW)
        values = {"exchange": exchange, "market": market, "symbol_id": f"{symbol}USDT"}
        hourly = candles_table(series, unit, "1h", days)
        land(settings, CANDLES, values | {"timeframe": "1h"}, hourly)
        land(settings, CANDLES, values | {"timeframe": "30m"},
             candles_table(series, unit, "30m", days))  # fmt: skip
        if market == "linear":
            closes = hourly.column("open_time").cast(pa.int64()).to_numpy() + HOUR
            oi, funding = derivatives(unit, closes, k)
            late = int(np.searchsorted(closes, NOW - DAY))
            period = {"exchange": exchange, "symbol_id": f"{symbol}USDT"}
            land(settings, OPEN_INTEREST, period | {"period": "1h"}, oi.slice(0, late))
            land(settings, FUNDING_RATES, period, funding)
            held_back[unit] = oi.slice(late)
        units.append(unit)
    return units, held_back


def before_lineage(unit: Unit, settings) -> int:
    """The signals run as it was before lineage: the last stored as_of from file names, the
    same inputs read, `signals_update` since then (the whole history computed); new rows."""
    from vectorflow.signals import SignalOptions, signals_update

    lake = settings.storage
    inputs = read_inputs(lake, unit)
    stored = lake.stored_range(series_folders(lake, unit)[0], SIGNALS)
    rows, _ = signals_update(
        inputs.candles, timeframe=unit.timeframe, since=stored[1] if stored else None,
        tpo_candles=inputs.tpo, tpo_timeframe=inputs.tpo_timeframe,
        open_interest=inputs.open_interest, funding=inputs.funding, options=SignalOptions(),
    )  # fmt: skip
    return len(rows)


def with_lineage(unit: Unit, settings) -> int:
    return update_signals(unit, settings).rows_written


def timed_pass(run, units, settings) -> float:
    started = time.perf_counter()
    for unit in units:
        assert run(unit, settings) == 0, unit.label  # nothing new, nothing stale
    return time.perf_counter() - started


def no_stale(units, settings, reps: int) -> tuple[float, float]:
    """Medians (s) of a pass over every series: before lineage, with lineage (ABBA order)."""
    sides = {"before": before_lineage, "lineage": with_lineage}
    times = {name: [] for name in sides}
    for rep in range(reps):
        for name in list(sides) if rep % 2 == 0 else list(sides)[::-1]:
            times[name].append(timed_pass(sides[name], units, settings))
    return statistics.median(times["before"]), statistics.median(times["lineage"])


def late_oi(units, settings, held_back) -> None:
    """Land the held-back day of open interest, run once, print what was rewritten."""
    for unit, table in held_back.items():
        symbol_id = unit.symbol.split("/")[0] + "USDT"
        land(settings, OPEN_INTEREST, {"exchange": unit.exchange, "symbol_id": symbol_id,
                                       "period": "1h"}, table)  # fmt: skip
    started = time.perf_counter()
    reports = [update_signals(unit, settings) for unit in units]
    seconds = time.perf_counter() - started
    print(f"\n(b) a day of late open interest landed ({ms_to_iso(NOW - DAY)} on): one run over "
          f"the 20 series in {seconds:.2f} s")  # fmt: skip
    print(f"  {'series':<34}{'rows rewritten':>15}{'from':>24}{'reason':>14}")
    for r in reports:
        print(f"  {r.unit.label:<34}{r.rows_written:>15}{r.first or '-':>24}"
              f"{r.detail.get('stale_reason') or '-':>14}")
    rewritten = sum(r.rows_written for r in reports)
    late_bars = sum(t.num_rows for t in held_back.values())
    only_that_day = all(r.first is None or parse_time(r.first) >= NOW - DAY for r in reports)
    print(f"  rows rewritten: {rewritten} (the late day's bars: {late_bars}); only that day: "
          f"{'YES' if only_that_day and rewritten == late_bars else 'NO'}")


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="history per series")
    parser.add_argument("--reps", type=int, default=5, help="timed no-stale passes per side")
    args = parser.parse_args()
    settings = load_settings(TMP / "data", env={})
    started = time.perf_counter()
    units, held_back = build(settings, args.days)
    print(f"signals lineage: 20 series x {args.days} days of 1h (+30m for TPO), 10 with OI and "
          f"funding; lake built in {time.perf_counter() - started:.1f} s; python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores")  # fmt: skip
    started = time.perf_counter()
    stored = sum(update_signals(unit, settings).rows_written for unit in units)
    print(f"first run: {stored:,} signal rows in {time.perf_counter() - started:.1f} s "
          f"(numba compile included)")  # fmt: skip
    before, lineage = no_stale(units, settings, args.reps)
    ratio = lineage / before
    print(f"\n(a) nothing stale: a pass over the 20 series, median of {args.reps} (ABBA)")
    print(f"  before lineage {before * 1000:8.0f} ms   with lineage {lineage * 1000:8.0f} ms   "
          f"ratio {ratio:.2f}   target <= {TARGET}: {'MET' if ratio <= TARGET else 'MISSED'}")
    late_oi(units, settings, held_back)
    started = time.perf_counter()
    coverage = read_view(settings.storage, "signal_coverage")
    print(f"\n(c) the signal_coverage view over the lake: {time.perf_counter() - started:.2f} s, "
          f"{len(coverage)} series, stale: {int(coverage['stale_reason'].notna().sum())}")
    return 0


def main() -> int:
    try:
        return run()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
