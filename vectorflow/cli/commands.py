"""What each `vectorflow` command does; imported only when a command runs (Prefect is slow)."""

from __future__ import annotations

import argparse
import sys
import time

from vectorflow.cli import (
    INVALID,
    OK,
    QUERY_TO_TRY,
    command_parser,
    prefect_environment,
)
from vectorflow.cli.modes import add_mode_option
from vectorflow.cli.output import format_rows
from vectorflow.cli.runs import run_flow, run_pipeline
from vectorflow.config import load_settings
from vectorflow.settings import Settings

INGEST_FLOW = "flows.ingest:ingest_candles"


def _run_ingest_flow(data_dir: str | None, **parameters) -> int:
    """Run the ingest flow in this process (the demo: on Prefect's local server, started once
    for the whole demo), print its units, and return the exit code."""
    prefect_environment()
    from flows.ingest import ingest_candles

    return run_flow(ingest_candles, data_dir=data_dir, **parameters)


def ingest(args: argparse.Namespace) -> int:
    """`vectorflow ingest`: validate the request, then land each series' missing candles."""
    from vectorflow.pipelines.candles import ingest_job, plan_ingest
    from vectorflow.pipelines.run import ThreadExecutor

    settings = load_settings(args.data_dir)  # a malformed file is invalid input: exit 2
    parameters = dict(
        **settings.series.pick(args.exchange, args.market, args.symbol, args.timeframe),
        since=args.since,
        until=args.until,
    )
    plan = plan_ingest(**parameters)

    def local():
        return ingest_job(settings, plan, ThreadExecutor(settings.workers))

    flow_parameters = dict(parameters, data_dir=args.data_dir)
    return run_pipeline(settings, args.prefect, INGEST_FLOW, flow_parameters, local)


def demo(args: argparse.Namespace) -> int:
    """`vectorflow demo`: the simulator on loopback, the ingest flow over its bundled history."""
    import os

    from vectorflow.cli.market_data import DEMO_QUERIES, demo_market_data
    from vectorflow.sim import ExchangeSimulator
    from vectorflow.timeframes import ms_to_iso

    settings = load_settings(args.data_dir)
    with ExchangeSimulator(port=args.port) as sim:
        for exchange in ("binance", "bybit"):
            os.environ[f"VECTORFLOW_{exchange.upper()}_URL"] = sim.url
        first, _ = sim.bundled_range("5m")
        print(
            f"exchange simulator on {sim.url}; ingesting from {ms_to_iso(first)} into "
            f"{settings.data_dir}",
            flush=True,
        )
        started = time.monotonic()
        code = _run_ingest_flow(
            args.data_dir,
            exchanges=["binance", "bybit"],
            markets=["spot", "linear"],
            symbols=["BTC/USDT", "BTC/USDT:USDT"],
            timeframes=["5m", "30m", "1h"],
            since=ms_to_iso(first),
            until=None,
        )
        code = max(code, demo_market_data(args.data_dir))
    print(f"\ningest took {time.monotonic() - started:.1f} s. In the catalog now:\n")
    _print_query(settings, QUERY_TO_TRY, "table")
    for query in DEMO_QUERIES:  # one order book and one cross-exchange row
        print()
        _print_query(settings, query, "table")
    from vectorflow.cli.playbooks import demo_playbooks

    code = max(code, demo_playbooks(args.data_dir))
    print(f'\nTry:\n  vectorflow sql "{QUERY_TO_TRY}"')
    print(f"or open {settings.catalog_path} read-only: duckdb -readonly {settings.catalog_path}")
    return code


def _print_query(settings: Settings, query: str, fmt: str) -> None:
    from vectorflow.lake.catalog import connect, execute_retrying, refresh_catalog

    refresh_catalog(settings)
    con = connect(settings, read_only=True)
    try:
        cursor = execute_retrying(con, query)  # a compaction may replace files meanwhile
        columns = [d[0] for d in cursor.description or []]
        print(format_rows(columns, cursor.fetchall(), fmt))
    finally:
        con.close()


def sql(args: argparse.Namespace) -> int:
    """`vectorflow sql`: run one query read-only on the catalog."""
    import duckdb

    settings = load_settings(args.data_dir)
    try:
        _print_query(settings, args.query, args.format)
    except duckdb.Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return INVALID
    return OK


def markets(args: argparse.Namespace) -> int:
    """`vectorflow markets`: the symbols an exchange lists in a market."""
    from vectorflow.exchanges.client import connect, list_symbols
    from vectorflow.exchanges.specs import exchange_spec

    exchange_spec(args.exchange).kline_endpoint(args.market)
    client = connect(args.exchange, load_settings(args.data_dir))
    for symbol in list_symbols(client, args.market):
        print(symbol)
    return OK


def sim(args: argparse.Namespace) -> int:
    """`vectorflow sim`: serve the exchange simulator until interrupted."""
    from vectorflow.settings.resilience import time_scale_from_env
    from vectorflow.sim import serve
    from vectorflow.sim.faults import load_faults
    from vectorflow.sim.ws import WsFault

    faults = load_faults(args.fault, args.faults)
    ws_faults = [WsFault.parse(text) for text in args.ws_fault or []]
    scale = args.time_scale if args.time_scale is not None else time_scale_from_env() or 1.0
    serve(
        port=args.port,
        now=args.now,
        time_scale=scale,
        enforce_limits=args.limits,
        faults=faults,
        ws_port=args.ws_port,
        ws_faults=ws_faults,
    )
    return OK


def add_parsers(sub) -> None:
    """The demo, ingest, sql, markets and sim commands."""
    demo_parser = command_parser(
        sub,
        "demo",
        "Run the ingest flow offline against the bundled exchange simulator.",
        "vectorflow demo",
    )
    demo_parser.add_argument(
        "--port", type=int, default=0, help="simulator port (default: a free one)"
    )

    ingest_parser = command_parser(
        sub,
        "ingest",
        "Fetch closed candles into the lake (resumes after the last stored candle).",
        "vectorflow ingest --exchange binance --market spot --symbol BTC/USDT --timeframe 1h "
        "--since 2024-01-01",
    )
    ingest_parser.add_argument(
        "--exchange",
        action="append",
        help="binance or bybit (repeatable; default: [series] of the settings)",
    )
    ingest_parser.add_argument(
        "--market", action="append", help="spot or linear (repeatable; default: [series])"
    )
    ingest_parser.add_argument(
        "--symbol",
        action="append",
        help="unified symbol, BTC/USDT (spot) or BTC/USDT:USDT (linear); repeatable",
    )
    ingest_parser.add_argument(
        "--timeframe", action="append", help="1m 5m 15m 30m 1h 4h 1d ... (repeatable)"
    )
    ingest_parser.add_argument(
        "--since",
        help="UTC date or ISO timestamp, inclusive (default: resume after what is "
        "stored; a series' first run starts [series] first_run_days (30) back)",
    )
    ingest_parser.add_argument(
        "--until", help="UTC date or ISO timestamp, exclusive (default: now)"
    )
    add_mode_option(ingest_parser)

    sql_parser = command_parser(
        sub,
        "sql",
        "Run a query on the DuckDB catalog (read-only) and print it.",
        'vectorflow sql "SELECT exchange, symbol, count(*) FROM candles GROUP BY ALL"',
    )
    sql_parser.add_argument("query")
    sql_parser.add_argument("--format", choices=["table", "csv", "json"], default="table")

    markets_parser = command_parser(
        sub,
        "markets",
        "List the symbols an exchange offers in a market.",
        "vectorflow markets --exchange binance --market spot",
    )
    markets_parser.add_argument("--exchange", required=True)
    markets_parser.add_argument("--market", required=True)

    sim_parser = command_parser(
        sub,
        "sim",
        "Serve the local exchange simulator (Binance and Bybit REST).",
        "vectorflow sim --port 8900",
    )
    sim_parser.add_argument("--port", type=int, default=8900)
    sim_parser.add_argument("--now", help="pin the simulator clock (UTC date or ISO timestamp)")
    sim_parser.add_argument(
        "--limits", action="store_true", help="enforce the exchanges' real budgets (429/418/403)"
    )
    sim_parser.add_argument(
        "--time-scale",
        type=float,
        help="shrink windows and bans by this factor (default: $VECTORFLOW_TIME_SCALE or 1)",
    )
    sim_parser.add_argument(
        "--fault",
        action="append",
        help="KIND[@PATH][:key=value,...], e.g. rate_limit@/api/v3/klines:after=2,retry_after=5"
        " (repeatable; kinds: rate_limit ban error slow reset garbage truncated duplicate"
        " shuffle missing)",
    )
    sim_parser.add_argument("--faults", help="JSON file: a list of faults with the same keys")
    sim_parser.add_argument(
        "--ws-port", type=int, help="also serve the order book WebSocket streams on this port"
    )
    sim_parser.add_argument(
        "--ws-fault",
        action="append",
        help="stream fault KIND[:key=value,...], e.g. gap:exchange=bybit,after=20 (repeatable;"
        " kinds: drop gap swap disconnect)",
    )
    demo_parser.set_defaults(run=demo)
    ingest_parser.set_defaults(run=ingest)
    sql_parser.set_defaults(run=sql)
    markets_parser.set_defaults(run=markets)
    sim_parser.set_defaults(run=sim)
