#!/usr/bin/env python
"""Signals speed: the project's Wilder indicators vs TA-Lib, the whole signal set, one new bar.

Data: 20 series of one year of 1h candles (plus the same year at 30m for the TPO profiles) from
the exchange simulator's own generator (`vectorflow.sim.series.History`: block-bootstrapped real
BTC returns): two seeds x (BTC, ETH, SOL, XRP, BNB) x (Binance spot, Binance USDⓈ-M). Every series
also gets a synthetic hourly open-interest series and 8-hourly funding, so the OI code is timed
too (spot markets would simply skip it).

(a) ADX, +DI, −DI and ATR (n = 14) of one year of 1h candles: `vectorflow.signals.regime.wilder`
    (one numba pass) vs `talib.ADX` + `PLUS_DI` + `MINUS_DI` + `ATR`, both on the same numpy
    arrays; median of many repetitions. Target: ours / TA-Lib <= 3.
(b) The whole signal set for all 20 series: `signals_update` (every stored column for every
    closed bar, plus the trap events) from DataFrames in the `candles` shape. Target: <= 2 s.
(c) Adding one new bar to a series' stored history: `signals_update(..., since=<the previous
    bar's close>)` on the series' year of candles, i.e. the row of the newest bar plus the trap
    events that changed with it. Median over the 20 series x reps. Target: <= 50 ms.

numba compiles once per machine (`cache=True`); the first call is timed and printed separately.
Needs TA-Lib (`pip install ta-lib`, a test-only dependency).

Run from anywhere:  python benchmarks/signals_speed.py [--series 20] [--days 365] [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vectorflow.signals.compute import signals_update  # noqa: E402
from vectorflow.signals.regime import wilder  # noqa: E402
from vectorflow.sim.series import History  # noqa: E402
from vectorflow.timeframes import parse_time  # noqa: E402

NOW = parse_time("2026-06-01")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT")
VENUES = (("binance", "spot"), ("binance", "linear"))


def _frame(series, timeframe: str, days: int) -> pd.DataFrame:
    b0, step, tab = series.table(timeframe)
    n = len(tab["o"])
    times = b0 + np.arange(n, dtype=np.int64) * step
    keep = (times + step <= NOW) & (times >= NOW - days * 86_400_000)
    tick, lot = series.tick, series.step
    return pd.DataFrame(
        {
            "open_time": times[keep].astype("datetime64[ms]"),
            "open": tab["o"][keep] * tick,
            "high": tab["h"][keep] * tick,
            "low": tab["l"][keep] * tick,
            "close": tab["c"][keep] * tick,
            "volume": tab["v"][keep] * lot,
            "quote_volume": tab["q"][keep],
        }
    )


def _oi_and_funding(h1: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    oi = 1e5 * np.exp(np.cumsum(rng.normal(0.0, 0.004, len(h1))))
    times = h1["open_time"] + pd.Timedelta(hours=1)
    oi_frame = pd.DataFrame(
        {"time": times, "open_interest": oi, "open_interest_value": oi * h1["close"].to_numpy()}
    )
    f_times = pd.date_range(times.iloc[0].ceil("8h"), times.iloc[-1], freq="8h")
    funding = pd.DataFrame(
        {
            "funding_time": f_times.astype("datetime64[ms]"),
            "funding_rate": rng.normal(1e-4, 1.5e-4, len(f_times)),
            "interval_hours": 8,
        }
    )
    return oi_frame, funding


def make_series(count: int, days: int) -> list[dict]:
    """`count` series of `days` days: 1h and 30m candles, OI and funding frames."""
    out: list[dict] = []
    seed = 0
    while len(out) < count:
        seed += 1
        history = History(seed=seed, now_ms=NOW)
        for symbol in SYMBOLS:
            for venue in VENUES:
                if len(out) == count:
                    break
                series = history.series(*venue, symbol)
                series.ensure(NOW)
                h1 = _frame(series, "1h", days)
                oi, funding = _oi_and_funding(h1, seed * 100 + len(out))
                item = {"candles": h1, "tpo_candles": _frame(series, "30m", days), "oi": oi}
                out.append(item | {"funding": funding, "name": f"{seed}:{venue[0]}:{symbol}"})
    return out


def bench_wilder(frame: pd.DataFrame, reps: int) -> tuple[float, float]:
    """Median seconds of (ours, TA-Lib) for ADX, +DI, −DI and ATR on the same arrays."""
    import talib

    h, lo, c = (
        np.ascontiguousarray(frame[k].to_numpy(np.float64)) for k in ("high", "low", "close")
    )
    ours, ref = [], []
    wilder(h, lo, c)
    for _ in range(reps):
        t0 = time.perf_counter()
        wilder(h, lo, c, 14)
        t1 = time.perf_counter()
        talib.ADX(h, lo, c, 14), talib.PLUS_DI(h, lo, c, 14)
        talib.MINUS_DI(h, lo, c, 14), talib.ATR(h, lo, c, 14)
        t2 = time.perf_counter()
        ours.append(t1 - t0)
        ref.append(t2 - t1)
    return statistics.median(ours), statistics.median(ref)


def _update(item: dict, since: object = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    return signals_update(
        item["candles"],
        timeframe="1h",
        since=since,
        tpo_candles=item["tpo_candles"],
        tpo_timeframe="30m",
        open_interest=item["oi"],
        funding=item["funding"],
    )


def bench_all(series: list[dict], reps: int) -> tuple[float, int]:
    """Median seconds to compute every series' whole history, and the rows produced."""
    times, rows = [], 0
    for _ in range(reps):
        t0 = time.perf_counter()
        rows = sum(len(_update(item)[0]) for item in series)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), rows


def bench_one_bar(series: list[dict], reps: int) -> float:
    """Median seconds to add the newest bar of a series (rows after the previous close)."""
    times = []
    for item in series:
        prev_close = item["candles"]["open_time"].iloc[-2] + pd.Timedelta(hours=1)
        for _ in range(reps):
            t0 = time.perf_counter()
            rows, _events = _update(item, since=prev_close)
            times.append(time.perf_counter() - t0)
            assert len(rows) == 1
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    t0 = time.perf_counter()
    series = make_series(args.series, args.days)
    bars = sum(len(s["candles"]) for s in series)
    print(f"data: {len(series)} series, {bars} 1h candles (+30m for TPO), "
          f"generated in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    t0 = time.perf_counter()
    _update(series[0])
    print(f"first call (numba compile or cache load): {time.perf_counter() - t0:.2f} s")

    ours, ref = bench_wilder(series[0]["candles"], reps=max(200, args.reps))
    print(f"(a) ADX/+DI/-DI/ATR, {len(series[0]['candles'])} 1h bars: ours {ours * 1e3:.3f} ms, "
          f"TA-Lib {ref * 1e3:.3f} ms, ratio {ours / ref:.2f}x (target <= 3x)")  # fmt: skip
    total, rows = bench_all(series, args.reps)
    print(f"(b) whole signal set, {len(series)} series ({rows} rows + trap events): "
          f"{total:.2f} s (target <= 2 s)")  # fmt: skip
    one = bench_one_bar(series, args.reps)
    print(f"(c) add one new bar to a series' history: {one * 1e3:.1f} ms (target <= 50 ms)")
    ok = ours / ref <= 3 and total <= 2 and one <= 0.05
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
