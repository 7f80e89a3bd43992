"""The `vectorflow` command line. The one library module that may import Prefect and flows/.

Exit codes: 0 when every unit landed, 1 when any unit failed, 2 for invalid input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap

from vectorflow import __version__
from vectorflow.errors import InvalidInput, VectorflowError

OK, UNITS_FAILED, INVALID = 0, 1, 2

QUERY_TO_TRY = (
    "SELECT exchange, market, symbol, timeframe, count(*) AS candles, "
    "min(open_time) AS first, max(open_time) AS last FROM candles GROUP BY ALL ORDER BY ALL"
)


def prefect_environment() -> None:
    """Offline-friendly Prefect defaults; anything the user set wins."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _command(sub, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="vectorflow",
        description="Crypto market data from Binance and Bybit into a Parquet lake with a DuckDB "
        "catalog, orchestrated by Prefect.",
        epilog='example:\n  vectorflow demo\n  vectorflow sql "SELECT count(*) FROM candles"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vectorflow {__version__}")
    parser.add_argument("--data-dir", help="data dir (default: $VECTORFLOW_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = _command(
        sub,
        "demo",
        "Run the ingest flow offline against the bundled exchange simulator.",
        "vectorflow demo",
    )
    demo.add_argument("--port", type=int, default=0, help="simulator port (default: a free one)")

    ingest = _command(
        sub,
        "ingest",
        "Fetch closed candles into the lake (resumes after the last stored candle).",
        "vectorflow ingest --exchange binance --market spot --symbol BTC/USDT --timeframe 1h "
        "--since 2024-01-01",
    )
    ingest.add_argument(
        "--exchange", action="append", help="binance or bybit (repeatable; default both)"
    )
    ingest.add_argument(
        "--market", action="append", help="spot or linear (repeatable; default both)"
    )
    ingest.add_argument(
        "--symbol",
        action="append",
        help="unified symbol, BTC/USDT (spot) or BTC/USDT:USDT (linear); repeatable",
    )
    ingest.add_argument(
        "--timeframe", action="append", help="1m 5m 15m 30m 1h 4h 1d ... (repeatable)"
    )
    ingest.add_argument(
        "--since", help="UTC date or ISO timestamp, inclusive (needed on a series' first run)"
    )
    ingest.add_argument("--until", help="UTC date or ISO timestamp, exclusive (default: now)")

    sql = _command(
        sub,
        "sql",
        "Run a query on the DuckDB catalog (read-only) and print it.",
        'vectorflow sql "SELECT exchange, symbol, count(*) FROM candles GROUP BY ALL"',
    )
    sql.add_argument("query")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")

    markets = _command(
        sub,
        "markets",
        "List the symbols an exchange offers in a market.",
        "vectorflow markets --exchange binance --market spot",
    )
    markets.add_argument("--exchange", required=True)
    markets.add_argument("--market", required=True)

    sim = _command(
        sub,
        "sim",
        "Serve the local exchange simulator (Binance and Bybit REST).",
        "vectorflow sim --port 8900",
    )
    sim.add_argument("--port", type=int, default=8900)
    sim.add_argument("--now", help="pin the simulator clock (UTC date or ISO timestamp)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vectorflow` command."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("vectorflow").setLevel(logging.INFO)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return INVALID
    from vectorflow.cli import commands

    try:
        return getattr(commands, args.command)(args)
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return INVALID
    except VectorflowError as exc:
        print(f"error: {textwrap.shorten(str(exc), 2000)}", file=sys.stderr)
        return UNITS_FAILED


if __name__ == "__main__":
    sys.exit(main())
