"""The `vectorflow` command line. The one library module that may import Prefect and flows/.

Exit codes: 0 when every unit landed, 1 when any unit failed, 2 for invalid input, 4 when the
data dir's state.db is damaged (`vectorflow doctor --repair`), 130 / 143 when SIGINT / SIGTERM
stopped the command (every wait wakes at once; the next run resumes).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import textwrap

from vectorflow import __version__, interrupt
from vectorflow.errors import CorruptState, InvalidInput, VectorflowError
from vectorflow.numba_cache import use_numba_cache
from vectorflow.secrets import REDACTOR, install_redaction

OK, UNITS_FAILED, INVALID, BROKEN = 0, 1, 2, 4

#: Commands that use `<data dir>/state.db` (rate limits, breakers): a damaged one stops them
#: first, with one line naming it, rather than in every unit
STATE_COMMANDS = frozenset(
    {"demo", "ingest", "markets", "market-data", "backfill", "capture-orderbook", "up",
     "playbook", "status"}
)  # fmt: skip

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
    use_numba_cache()  # before the signals or vectorbt load numba; flows and workers inherit it
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("vectorflow").setLevel(logging.INFO)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return INVALID
    interrupt.install_handlers()
    try:
        if args.command in STATE_COMMANDS:
            _check_state(args.data_dir)
        code = args.run(args)
    except BaseException as exc:  # noqa: BLE001 - a stop (in whatever form), our errors; else raised
        return _failed(exc) if interrupt.stop_signal() is None else _stopped()
    # a command that ends on Ctrl-C by design (a server) returns; one whose waits it cut did not
    return _stopped() if interrupt.cut_short() else code


def _stopped() -> int:
    """After SIGINT or SIGTERM: the one line saying what was waiting, and 128 + the signal."""
    print(interrupt.stopped_line(), file=sys.stderr)
    return 128 + interrupt.stop_signal()


def _check_state(data_dir: str | None) -> None:
    """CorruptState when the data dir's state.db is damaged."""
    from vectorflow.config import load_settings
    from vectorflow.resilience.repair import check_state

    check_state(load_settings(data_dir).state_path)


def _failed(exc: BaseException) -> int:
    """The exit code of an error the command raised (printed as one line); others re-raised."""
    if isinstance(exc, CorruptState):
        print(f"error: {exc}", file=sys.stderr)
        return BROKEN
    if isinstance(exc, InvalidInput):
        print(f"error: {REDACTOR.redact(str(exc))}", file=sys.stderr)
        return INVALID
    if isinstance(exc, VectorflowError):
        print(f"error: {textwrap.shorten(REDACTOR.redact(str(exc)), 2000)}", file=sys.stderr)
        return UNITS_FAILED
    raise exc


def entry() -> None:
    """The `vectorflow` command: run `main()` and exit with its code.

    After SIGINT or SIGTERM the process ends without the interpreter's teardown (seconds, with
    Prefect's threads): what the run wrote is complete by then, only Prefect's last log lines
    may not reach its API.
    """
    code = main()
    if interrupt.stop_signal() is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
