"""The `vectorflow` command line. The one library module that may import Prefect and flows/.

Exit codes: 0 when every unit landed, 1 when any unit failed, 2 for invalid input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import textwrap

from vectorflow import __version__
from vectorflow.errors import InvalidInput, VectorflowError
from vectorflow.secrets import REDACTOR, install_redaction

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


def command_parser(sub, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """Add a subcommand whose help shows `summary` and a worked `example`."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


#: Modules that add commands: each has `add_parsers(sub)`, setting `run` on its parsers. Keep their
#: top-level imports light (Prefect is imported inside the command functions).
COMMAND_MODULES = (
    "vectorflow.cli.commands",
    "vectorflow.cli.market_data",
    "vectorflow.cli.stream",
    "vectorflow.cli.ops",
    "vectorflow.cli.playbooks",
    "vectorflow.cli.signals",
    "vectorflow.cli.status",
    "vectorflow.cli.secrets",
    "vectorflow.cli.backtest",
    "vectorflow.cli.doctor",
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
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vectorflow` command."""
    install_redaction()  # before anything logs: configured secrets never reach a log line
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("vectorflow").setLevel(logging.INFO)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return INVALID
    try:
        from vectorflow.cli.arguments import check_data_dir

        check_data_dir(args)
        return args.run(args)
    except InvalidInput as exc:
        print(f"error: {REDACTOR.redact(str(exc))}", file=sys.stderr)
        return INVALID
    except VectorflowError as exc:
        print(f"error: {textwrap.shorten(REDACTOR.redact(str(exc)), 2000)}", file=sys.stderr)
        return UNITS_FAILED
    except Exception as exc:
        if os.environ.get("VECTORFLOW_DEBUG"):
            raise
        print(unexpected_error(exc), file=sys.stderr)
        return UNITS_FAILED


def unexpected_error(exc: BaseException) -> str:
    """One line for an error nobody raised on purpose (the traceback only with VECTORFLOW_DEBUG)."""
    message = " ".join(REDACTOR.redact(str(exc)).split()) or "no message"
    return (
        f"error: {type(exc).__name__}: {textwrap.shorten(message, 500)} "
        "(run with VECTORFLOW_DEBUG=1 for the traceback)"
    )


if __name__ == "__main__":
    sys.exit(main())
