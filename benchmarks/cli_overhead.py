#!/usr/bin/env python
"""What a person waits for: a `vectorflow` command's whole wall time against the same work
through the library in one script (and a bare ccxt loop where one applies).

Every side is a fresh Python process, timed from start to exit, against one exchange simulator
served by this script on 127.0.0.1 (clock pinned, so every side sees the same candles):

- ingest, first run: `vectorflow ingest` of binance spot BTC/USDT 5m over 20 days (5,760
  candles, 6 requests) into an empty data dir, vs a script calling `plan_ingest`, `ingest_job`
  (threads) and `refresh_catalog`, vs a bare ccxt loop (`fetch_ohlcv`, limit 1000);
- ingest, nothing new: the same command again on that data dir, vs the script again;
- market-data: open interest (1h) and funding of binance BTC/USDT:USDT since the same day;
- signals: `vectorflow signals` of the ingested series (nothing new to compute; it prints the
  latest bar), vs `update_signals` and reading the latest row;
- playbook (rules): `vectorflow playbook` of the ingested series (signals brought up to date
  first), vs `playbooks_job`, the pipeline function it calls.

Medians of `--reps` (default 5) runs per side, sides alternating; printed as absolute seconds
and as ratios. Targets: CLI / library <= 1.3 for every command, a no-op ingest under 1.5 s.

Run from anywhere:  python benchmarks/cli_overhead.py [--reps 5]
Everything is written into a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vectorflow.sim import ExchangeSimulator  # noqa: E402
from vectorflow.timeframes import ms_to_iso, parse_time  # noqa: E402

SIM_NOW = "2026-06-01T12:02:30Z"
SINCE = ms_to_iso(parse_time("2026-06-01T12:00:00Z") - 20 * 86_400_000)
SERIES = ["--exchange", "binance", "--market", "spot", "--symbol", "BTC/USDT", "--timeframe", "5m"]
TARGET_RATIO, TARGET_NOOP_S = 1.3, 1.5

LIBRARY_INGEST = f"""
from vectorflow.lake.catalog import refresh_catalog
from vectorflow.pipelines.candles import ingest_job, plan_ingest
from vectorflow.pipelines.run import ThreadExecutor
from vectorflow.config import load_settings
settings = load_settings()
plan = plan_ingest(["binance"], ["spot"], ["BTC/USDT"], ["5m"], since={SINCE!r})
results = ingest_job(settings, plan, ThreadExecutor(settings.workers))
refresh_catalog(settings)
print(sum(r.rows_written for r in results))
"""

LIBRARY_MARKET_DATA = f"""
from vectorflow.lake.catalog import refresh_catalog
from vectorflow.pipelines.market_data import market_data_job, plan_market_data
from vectorflow.pipelines.run import ThreadExecutor
from vectorflow.config import load_settings
settings = load_settings()
plan = plan_market_data(["binance"], None, ["BTC/USDT:USDT"], ["open_interest", "funding_rates"],
                        period="1h", since={SINCE!r})
results = market_data_job(settings, plan, ThreadExecutor(settings.workers))
refresh_catalog(settings)
print(sum(r.rows_written for r in results))
"""

LIBRARY_SIGNALS = """
from vectorflow.lake.catalog import read_view, refresh_catalog
from vectorflow.pipelines.signals import update_signals
from vectorflow.config import load_settings
from vectorflow.units import Unit
settings = load_settings()
unit = Unit("binance", "spot", "BTC/USDT", "5m")
update_signals(unit, settings)
refresh_catalog(settings)
rows = read_view(settings.storage, "signals", {"exchange": "binance", "symbol": "BTC/USDT",
                 "timeframe": "5m"})
print(rows.sort_values("as_of").iloc[-1]["regime"])
"""

LIBRARY_PLAYBOOK = """
from vectorflow.lake.catalog import refresh_catalog
from vectorflow.pipelines.playbook_jobs import playbooks_job
from vectorflow.pipelines.run import ThreadExecutor
from vectorflow.config import load_settings
from vectorflow.units import Unit
settings = load_settings()
run = playbooks_job(settings, [Unit("binance", "spot", "BTC/USDT", "5m")], [None],
                    ThreadExecutor(settings.playbooks.concurrency), "bench")
refresh_catalog(settings)
print(run.results[0].status)
"""


BARE_CCXT = f"""
import os
import ccxt
from vectorflow.exchanges.urls import override_api_urls
exchange = ccxt.binance({{"enableRateLimit": False,
                         "options": {{"fetchMarkets": {{"types": ["spot", "linear"]}}}}}})
exchange.urls["api"] = override_api_urls(exchange.urls["api"], os.environ["BASE"])
exchange.load_markets()
since, until, n = {parse_time(SINCE)}, {parse_time("2026-06-01T12:00:00Z")}, 0
while since < until:
    page = [c for c in exchange.fetch_ohlcv("BTC/USDT", "5m", since, limit=1000) if c[0] < until]
    if not page:
        break
    n += len(page)
    since = page[-1][0] + 300_000
print(n)
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one process, start to exit (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def cli(*args: str) -> list[str]:
    """The `vectorflow` command with `args`."""
    return [sys.executable, "-m", "vectorflow.cli", *args]


def script(code: str) -> list[str]:
    """A Python process running `code`."""
    return [sys.executable, "-c", code]


def one_rep(sim: ExchangeSimulator, work: Path, rep: int) -> dict[str, dict[str, float]]:
    """One run of every comparison, each side in a fresh data dir where it needs one."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VECTORFLOW_", "PREFECT_"))}
    base |= {"VECTORFLOW_BINANCE_URL": sim.url, "VECTORFLOW_BYBIT_URL": sim.url,
             "PREFECT_HOME": str(work / "prefect-home"), "PYTHONPATH": str(ROOT),
             "NUMBA_CACHE_DIR": str(work / "numba")}  # fmt: skip
    env = {side: {**base, "VECTORFLOW_DATA_DIR": str(work / f"{side}-{rep}")}
           for side in ("cli", "library")}  # fmt: skip
    bare = {**base, "BASE": sim.url}
    out: dict[str, dict[str, float]] = {}
    out["ingest (first run)"] = {
        "cli": timed(cli("ingest", *SERIES, "--since", SINCE), env["cli"]),
        "library": timed(script(LIBRARY_INGEST), env["library"]),
        "bare ccxt": timed(script(BARE_CCXT), bare),
    }
    out["ingest (nothing new)"] = {
        "cli": timed(cli("ingest", *SERIES), env["cli"]),
        "library": timed(script(LIBRARY_INGEST), env["library"]),
    }
    md = ["market-data", "--exchange", "binance", "--symbol", "BTC/USDT:USDT", "--dataset",
          "open_interest", "--dataset", "funding_rates", "--period", "1h", "--since", SINCE]
    out["market-data"] = {
        "cli": timed(cli(*md), env["cli"]),
        "library": timed(script(LIBRARY_MARKET_DATA), env["library"]),
    }
    out["signals"] = {
        "cli": timed(cli("signals", *SERIES), env["cli"]),
        "library": timed(script(LIBRARY_SIGNALS), env["library"]),
    }
    out["playbook (rules)"] = {
        "cli": timed(cli("playbook", *SERIES), env["cli"]),
        "library": timed(script(LIBRARY_PLAYBOOK), env["library"]),
    }
    return out


def main() -> int:
    """Run the comparisons and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vf-bench-cli-"))
    runs: dict[str, dict[str, list[float]]] = {}
    try:
        with ExchangeSimulator(now=SIM_NOW) as sim:
            warm = one_rep(sim, work, -1)  # numba's cache and the OS's file cache, not counted
            del warm
            for rep in range(args.reps):
                for name, sides in one_rep(sim, work, rep).items():
                    for side, seconds in sides.items():
                        runs.setdefault(name, {}).setdefault(side, []).append(seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"medians of {args.reps} runs, seconds (load average {os.getloadavg()[0]:.2f})")
    print(f"{'command':<22}{'cli':>8}{'library':>9}{'bare':>8}{'cli/lib':>9}{'cli/bare':>10}")
    ok = True
    for name, sides in runs.items():
        m = {side: statistics.median(values) for side, values in sides.items()}
        ratio = m["cli"] / m["library"]
        bare = m.get("bare ccxt")
        ok &= ratio <= TARGET_RATIO
        print(f"{name:<22}{m['cli']:>8.2f}{m['library']:>9.2f}"
              f"{bare if bare else float('nan'):>8.2f}{ratio:>9.2f}"
              f"{m['cli'] / bare if bare else float('nan'):>10.2f}")  # fmt: skip
    noop = statistics.median(runs["ingest (nothing new)"]["cli"])
    ok &= noop < TARGET_NOOP_S
    print(f"targets: cli/library <= {TARGET_RATIO} for every command, no-op ingest "
          f"< {TARGET_NOOP_S} s (it took {noop:.2f} s): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
