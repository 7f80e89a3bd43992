#!/usr/bin/env python
"""Backtest grid benchmark: the project's grid runner against bare vectorbt and backtesting.py.

Data: one year (8,760 bars) of 1h BTC/USDT perpetual candles from the exchange simulator's
generator (`vectorflow.sim.series.History`: block-bootstrapped from the bundled real candles),
the same bars for every side. Costs: 0.1 % fee, no slippage, 10,000 cash, long only.

1. Overhead: `vectorflow.backtest.grid.run_grid` (chunked by the default 1 GiB budget, metrics
   per parameter set) vs a bare vectorbt script (`MA.run_combs` + `from_signals` + the same
   eleven metric calls) on the same moving-average cross grid: every (fast, slow) pair of windows
   2..47 with fast < slow = 1,035 sets. After a warm-up of both (numba compile, not counted),
   the sides alternate `--reps` times; the ratio uses medians (target <= 1.2). Both sides'
   metrics are checked equal.
2. Peer: the same single strategy (SMA cross, long only, fills at the signal bar's close) with
   backtesting.py's own grid API (`Backtest.optimize`, which uses its multiprocessing) on a
   smaller grid; parameter sets per second both ways, and the speed-up. One parameter set's
   trade count is printed from both as a sanity check.
3. Memory: a 5,000-set grid run in a fresh process with the default chunking, and in another
   as one chunk; the growth of peak RSS (ru_maxrss) during the grid of each.

Run from anywhere:  python benchmarks/backtest_grid.py [--reps 3] [--peer-sets 60] [--no-memory]
backtesting.py is a benchmark-only dependency: pip install backtesting (0.6.6 measured).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vectorflow.backtest.grid import param_grid, run_grid, simulate_params  # noqa: E402
from vectorflow.backtest.metrics import raw_metrics  # noqa: E402
from vectorflow.backtest.portfolio import YEAR_FREQ, PortfolioSettings  # noqa: E402
from vectorflow.backtest.strategies import get_strategy  # noqa: E402
from vectorflow.numba_cache import use_numba_cache  # noqa: E402
from vectorflow.sim.series import History  # noqa: E402
from vectorflow.timeframes import parse_time  # noqa: E402

TARGET = 1.2
NOW = "2026-06-01T12:02:30Z"
BARS = 8760
SETTINGS = PortfolioSettings(fees=0.001, slippage=0.0, init_cash=10_000.0, timeframe="1h",
                             both_sides=False)  # fmt: skip
WINDOWS = list(range(2, 48))  # C(46, 2) = 1,035 (fast, slow) pairs


def year_of_bars() -> pd.DataFrame:
    """The simulator's last 8,760 hourly candles of Binance's BTCUSDT perpetual, as bars."""
    history = History(seed=7, now_ms=parse_time(NOW))
    series = history.series("binance", "linear", "BTCUSDT")
    series.ensure(parse_time(NOW))
    start, step, table = series.table("1h")
    n = min(len(table["c"]), (parse_time(NOW) - start) // step)  # closed candles only
    first = n - BARS
    index = pd.to_datetime(start + (np.arange(first, n) + 1) * step, unit="ms")
    return pd.DataFrame(
        {k: table[c][first:n] * (series.step if c == "v" else series.tick)
         for k, c in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"), ("volume", "v"))},
        index=index,
    )  # fmt: skip


def bare_vectorbt(close: pd.Series, windows: list[int]) -> pd.DataFrame:
    """The textbook vectorbt grid: every window pair as columns, one portfolio, the metrics."""
    import vectorbt as vbt

    fast, slow = vbt.MA.run_combs(close, window=windows, r=2, short_names=["fast", "slow"])
    entries, exits = fast.ma_crossed_above(slow), fast.ma_crossed_below(slow)
    pf = vbt.Portfolio.from_signals(close, entries, exits, fees=0.001, slippage=0.0,
                                    init_cash=10_000.0, freq="1h")  # fmt: skip
    returns = pf.get_returns_acc(year_freq=YEAR_FREQ)
    closed = pf.trades.closed
    return pd.DataFrame(
        {
            "total_return": pf.total_return(),
            "benchmark_return": pf.total_benchmark_return(),
            "sharpe_ratio": returns.sharpe_ratio(),
            "sortino_ratio": returns.sortino_ratio(),
            "calmar_ratio": returns.calmar_ratio(),
            "max_drawdown": pf.max_drawdown(),
            "win_rate": closed.win_rate(),
            "profit_factor": closed.profit_factor(),
            "exposure": pf.position_coverage(),
            "trades": pf.trades.count(),
            "closed_trades": closed.count(),
        }
    )


def project(bars: pd.DataFrame, combos: list[dict], budget_mb: float = 1024.0):
    """The project's grid runner over the same grid."""
    return run_grid(get_strategy("ma_cross"), bars, combos, SETTINGS, memory_budget_mb=budget_mb)


def grid_combos(windows: list[int]) -> list[dict]:
    """The grid as the project writes it: every fast < slow pair, in run_combs' order."""
    pairs = itertools.combinations(windows, 2)
    return [{"fast": f, "slow": s} for f, s in pairs]


def check_same(bare: pd.DataFrame, ours: pd.DataFrame) -> None:
    """Both sides computed the same numbers for the same parameter sets."""
    for name in ours.columns:
        a, b = bare[name].to_numpy(np.float64), ours[name].to_numpy(np.float64)
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
            raise SystemExit(f"the two sides disagree on {name}")


def overhead(bars: pd.DataFrame, reps: int) -> float:
    """Median seconds of the project's runner, after printing the comparison; returns sets/s."""
    combos = grid_combos(WINDOWS)
    assert combos == param_grid(get_strategy("ma_cross"), values={"fast": WINDOWS, "slow": WINDOWS})
    started = time.perf_counter()
    check_same(bare_vectorbt(bars["close"], WINDOWS), project(bars, combos).metrics)
    print(
        f"warm-up (numba compile, both sides, checked equal): {time.perf_counter() - started:.1f} s"
    )
    times: dict[str, list[float]] = {"bare": [], "project": []}
    for _ in range(reps):
        for side in ("bare", "project") if _ % 2 == 0 else ("project", "bare"):
            t0 = time.perf_counter()
            if side == "bare":
                bare_vectorbt(bars["close"], WINDOWS)
            else:
                chunks = project(bars, combos).chunks
            times[side].append(time.perf_counter() - t0)
    bare, ours = statistics.median(times["bare"]), statistics.median(times["project"])
    print(f"\n1. overhead on {len(combos):,} MA sets x {len(bars):,} bars (medians of {reps}):")
    print(f"   bare vectorbt     {bare:6.2f} s  ({', '.join(f'{t:.2f}' for t in times['bare'])})")
    print(f"   project runner    {ours:6.2f} s  ({', '.join(f'{t:.2f}' for t in times['project'])})"
          f"  [{chunks} chunks within 1 GiB]")  # fmt: skip
    verdict = "met" if ours / bare <= TARGET else "MISSED"
    print(f"   ratio project/bare = {ours / bare:.2f}  (target <= {TARGET}: {verdict})")
    return len(combos) / ours


def sma(values, n):
    """Simple moving average for backtesting.py's `I`."""
    return pd.Series(values).rolling(n).mean().to_numpy()


try:  # a benchmark-only dependency; its strategy class must be importable to be pickled
    from backtesting import Strategy as _PeerStrategy
    from backtesting.lib import crossover
except ImportError:  # pragma: no cover
    _PeerStrategy = object


class SmaCross(_PeerStrategy):
    """The same SMA cross in backtesting.py: buy on fast above slow, close on the opposite."""

    fast = 10
    slow = 30

    def init(self):
        self.f = self.I(sma, self.data.Close, self.fast)
        self.s = self.I(sma, self.data.Close, self.slow)

    def next(self):
        if crossover(self.f, self.s):
            self.buy()
        elif crossover(self.s, self.f):
            self.position.close()


def peer(bars: pd.DataFrame, ours_per_s: float, n_sets: int) -> None:
    """backtesting.py's optimize over a grid of about `n_sets` sets; sets per second both ways."""
    import warnings

    import backtesting
    from backtesting import Backtest

    frame = bars.rename(columns=str.capitalize)
    # whole units at ~100k per BTC: enough cash that rounding to units is negligible
    bt = Backtest(frame, SmaCross, cash=1e9, commission=0.001, trade_on_close=True,
                  finalize_trades=True)  # fmt: skip
    fasts = list(range(5, 50, 5))
    slows = list(range(20, 200, 10))
    grid = [(f, s) for f in fasts for s in slows if f < s][:n_sets]
    wanted = set(grid)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # progress bars
        warnings.simplefilter("ignore")
        one = bt.run(fast=10, slow=30)
        t0 = time.perf_counter()
        bt.optimize(fast=sorted({f for f, _ in grid}), slow=sorted({s for _, s in grid}),
                    constraint=lambda p: (p.fast, p.slow) in wanted, maximize="Sharpe Ratio",
                    max_tries=None)  # fmt: skip
        seconds = time.perf_counter() - t0
    one_set = [{"fast": 10, "slow": 30}]
    ours_one = raw_metrics(simulate_params(get_strategy("ma_cross"), bars, one_set, SETTINGS))
    ours_one = ours_one.iloc[0]
    peer_per_s = len(grid) / seconds
    print(f"\n2. peer: backtesting.py {backtesting.__version__}, the same SMA cross (long only, "
          f"fills at the signal close)")  # fmt: skip
    print(f"   backtesting.py optimize: {len(grid)} sets in {seconds:.1f} s = {peer_per_s:.2f} "
          f"sets/s ({os.cpu_count()} cores, its multiprocessing)")  # fmt: skip
    print(f"   project runner:          {ours_per_s:,.0f} sets/s")
    print(f"   speed-up: {ours_per_s / peer_per_s:,.0f}x")
    print(f"   sanity, fast=10 slow=30: trades {int(ours_one['trades'])} (project) vs "
          f"{one['# Trades']} (backtesting.py); return {ours_one['total_return']:+.2%} vs "
          f"{one['Return [%]'] / 100:+.2%}")  # fmt: skip


class PeakRss:
    """Samples this process's resident memory every few milliseconds; `peak` is the highest."""

    def __init__(self, every_s: float = 0.005) -> None:
        import psutil

        self.process, self.every_s = psutil.Process(), every_s
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.every_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def memory_child(mode: str, n_sets: int, bars_path: str) -> None:
    """In a fresh process: peak RSS growth (MiB) of a grid of n_sets, chunked or as one chunk."""
    bars = pd.read_parquet(bars_path)
    combos = grid_combos(list(range(2, 200)))[:n_sets]
    project(bars, combos[:4])  # compile first: the compiler's memory is not the grid's
    gc.collect()
    before = PeakRss().process.memory_info().rss
    t0 = time.perf_counter()
    with PeakRss() as rss:
        result = project(bars, combos, budget_mb=1024.0 if mode == "chunked" else 1e9)
    seconds = time.perf_counter() - t0
    print(f"{(rss.peak - before) / 2**20:.0f} {seconds:.1f} {result.chunks}")


def memory(bars: pd.DataFrame, n_sets: int) -> None:
    """Run memory_child in two fresh processes and print both peaks."""
    print(f"\n3. peak memory of a {n_sets:,}-set MA grid x {BARS:,} bars (growth of resident "
          "memory during the grid, sampled every 5 ms):")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="vf-bench-bt-") as tmp:
        path = Path(tmp) / "bars.parquet"
        bars.to_parquet(path)
        for mode in ("chunked", "whole"):
            done = subprocess.run(
                [sys.executable, __file__, "--memory-child", mode, "--sets", str(n_sets),
                 "--bars", str(path)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            mib, seconds, chunks = done.stdout.split()[-3:]
            label = "chunked (1 GiB budget)" if mode == "chunked" else "one chunk (no budget)"
            print(f"   {label:24s} {int(mib):6,} MiB  {float(seconds):6.1f} s  {chunks} chunk(s)")


def main() -> None:
    use_numba_cache()  # before vectorbt loads numba
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--peer-sets", type=int, default=60)
    parser.add_argument("--sets", type=int, default=5000)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--memory-child", choices=["chunked", "whole"], help=argparse.SUPPRESS)
    parser.add_argument("--bars", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.sets, args.bars)
        return
    bars = year_of_bars()
    print(f"{len(bars):,} 1h bars {bars.index[0]} -> {bars.index[-1]}, numba cache "
          f"{os.environ['NUMBA_CACHE_DIR']}")  # fmt: skip
    ours_per_s = overhead(bars, args.reps)
    if not args.no_peer:
        peer(bars, ours_per_s, args.peer_sets)
    if not args.no_memory:
        memory(bars, args.sets)


if __name__ == "__main__":
    main()
