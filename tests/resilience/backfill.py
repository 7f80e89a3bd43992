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
from concurrent.futures import ThreadPoolExecutor

import pandas  # noqa: F401 - imported by the first Parquet write otherwise: do it before "ready"
import pyarrow.compute  # noqa: F401

from vectorflow.pipelines.candles import SeriesUnit, ingest_series
from vectorflow.settings import load_settings


def parse_unit(text: str) -> SeriesUnit:
    """`exchange/market/BASE/QUOTE[:SETTLE]/timeframe` as a unit."""
    exchange, market, rest = text.split("/", 2)
    symbol, _, timeframe = rest.rpartition("/")
    return SeriesUnit(exchange, market, symbol, timeframe)


def run(units: list[SeriesUnit], since: int, until: int, threads: int) -> list[dict]:
    """Ingest every unit, `threads` at a time; a report row (or the error) per unit."""
    settings = load_settings()

    def one(unit: SeriesUnit) -> dict:
        try:
            return ingest_series(unit, since, until, settings).as_row()
        except Exception as exc:  # noqa: BLE001 - reported, the test decides
            return {"unit": unit.label, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, units))


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
