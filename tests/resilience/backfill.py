"""A backfill process for the resilience tests and the budget benchmark.

    python -m tests.resilience.backfill SINCE UNTIL UNIT [UNIT ...] [--threads N] [--start-at T]
                                        [--wait-for-go]

UNIT is `exchange/market/symbol/timeframe` (e.g. `binance/linear/BTC/USDT:USDT/1m`); settings
come from the environment (VECTORFLOW_DATA_DIR, VECTORFLOW_*_URL, VECTORFLOW_TIME_SCALE).
`--start-at` is a wall-clock time (seconds) to wait for, so several processes start together;
`--wait-for-go` waits for a line on stdin instead (the process is ready, imports done).
Prints one JSON line per unit: its report, or its error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pandas  # noqa: F401 - imported by the first Parquet write otherwise: do it before "ready"
import pyarrow.compute  # noqa: F401

from vectorflow.config import load_settings
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.run import ThreadExecutor, run_units
from vectorflow.units import Unit


def parse_unit(text: str) -> Unit:
    """`exchange/market/BASE/QUOTE[:SETTLE]/timeframe` as a unit."""
    exchange, market, rest = text.split("/", 2)
    symbol, _, timeframe = rest.rpartition("/")
    return Unit(exchange, market, symbol, timeframe)


def run(units: list[Unit], since: int, until: int, threads: int) -> list[dict]:
    """Ingest every unit, `threads` at a time; a report row (or the error) per unit."""
    settings = load_settings()
    results = run_units(ThreadExecutor(threads), ingest_series, units, since, until, settings)
    return [r.as_row() for r in results]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser()
    parser.add_argument("since", type=int)
    parser.add_argument("until", type=int)
    parser.add_argument("units", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--wait-for-go", action="store_true")
    args = parser.parse_args(argv)
    units = [parse_unit(u) for u in args.units]
    print("ready", flush=True)
    if args.wait_for_go:
        sys.stdin.readline()
    time.sleep(max(0.0, args.start_at - time.time()))
    for row in run(units, args.since, args.until, args.threads):
        print(json.dumps(row, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
