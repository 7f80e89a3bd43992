"""Commands for market data and the lake: market-data, backfill, compact, prune."""

from __future__ import annotations

import argparse
import sys

from vectorflow.cli import INVALID, OK, command_parser
from vectorflow.cli.modes import add_mode_option
from vectorflow.cli.output import format_rows
from vectorflow.cli.runs import run_flow, run_pipeline
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput

COMPACT_COLUMNS = [
    "dataset",
    "partition",
    "files_in",
    "files_out",
    "rows_out",
    "compacted",
    "deleted",
]


MARKET_DATA_FLOW = "flows.market_data:ingest_market_data"
BACKFILL_FLOW = "flows.backfill:backfill_candles"
COMPACT_FLOW = "flows.maintenance:compact_lake"


def _series_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exchange", action="append", help="binance or bybit (default: [series])")
    parser.add_argument("--market", action="append", help="spot or linear (default: [series])")
    parser.add_argument(
        "--symbol", action="append", help="unified symbol: BTC/USDT (spot), BTC/USDT:USDT"
    )


def market_data(args: argparse.Namespace) -> int:
    """`vectorflow market-data`: order books, open interest and funding into the lake."""
    from vectorflow.pipelines.market_data import MARKET_DATASETS, market_data_job, plan_market_data
    from vectorflow.pipelines.run import ThreadExecutor

    settings = load_settings(args.data_dir)
    series = settings.series
    picked = series.pick(args.exchange, args.market, args.symbol)
    picked.pop("timeframes")
    parameters = dict(
        **picked,
        datasets=args.dataset or list(MARKET_DATASETS),
        period=args.period or series.derivatives_period,
        levels=args.levels or series.orderbook_levels,
        since=args.since,
        until=args.until,
    )
    plan = plan_market_data(**parameters)  # invalid input: exit 2 before anything runs

    def local():
        return market_data_job(settings, plan, ThreadExecutor(settings.workers))

    flow_parameters = dict(parameters, data_dir=args.data_dir)
    return run_pipeline(settings, args.prefect, MARKET_DATA_FLOW, flow_parameters, local)


def _stderr_handlers() -> list:
    """The log handlers writing to this terminal's stderr (the root's, Prefect's)."""
    import logging

    handlers = [h for name in ("", "prefect") for h in logging.getLogger(name).handlers]
    return [h for h in handlers if getattr(h, "stream", None) in (sys.stderr, sys.__stderr__)]


def _progress_bar():
    """A terminal bar on stderr fed by backfill progress snapshots; (listener, stop).

    While it shows, log lines print above it: rich's live display takes over stderr, and the log
    handlers writing there write through it. It stops at the backfill's final snapshot, before
    the command prints its table, so the finished bar is drawn once, above the table.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("{task.fields[series]} series"),
        TextColumn("{task.fields[pages]} pages"),
        TextColumn("{task.fields[candles]:,} candles"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("ETA {task.fields[eta]}"),
        console=Console(stderr=True),
        redirect_stdout=False,
    )
    task = bar.add_task("backfill", total=1, series="0/?", pages=0, candles=0, eta="?")
    handlers = _stderr_handlers()
    streams = [(h, h.stream, getattr(h, "console", None)) for h in handlers]

    def stop() -> None:
        if not bar.live.is_started:
            return
        bar.stop()
        for handler, stream, console in streams:
            handler.setStream(stream)
            if console is not None:
                console.file = stream

    def listener(snap) -> None:
        eta = "?" if snap.eta_seconds is None else f"{snap.eta_seconds:,.0f} s"
        bar.update(
            task,
            total=max(snap.candles_expected, 1),
            completed=snap.covered if snap.candles_expected else snap.fraction,
            series=f"{snap.series_done}/{snap.series_total}",
            pages=snap.pages,
            candles=snap.candles,
            eta=eta,
        )
        if snap.series_done == snap.series_total:
            stop()

    bar.start()
    for handler, _, console in streams:  # sys.stderr is rich's proxy now: lines go above the bar
        handler.setStream(sys.stderr)
        if console is not None:
            console.file = sys.stderr
    return listener, stop


def backfill(args: argparse.Namespace) -> int:
    """`vectorflow backfill`: a long candle history with progress; rerun to resume."""
    from vectorflow.pipelines.backfill import LISTENERS, backfill_job
    from vectorflow.pipelines.candles import plan_ingest
    from vectorflow.pipelines.run import ThreadExecutor

    settings = load_settings(args.data_dir)
    parameters = dict(
        **settings.series.pick(args.exchange, args.market, args.symbol, args.timeframe),
        since=args.since,
        until=args.until,
    )
    plan = plan_ingest(**parameters)

    def local():
        return backfill_job(settings, plan, ThreadExecutor(settings.workers))

    listener, stop = _progress_bar()
    LISTENERS.append(listener)
    try:
        flow_parameters = dict(parameters, data_dir=args.data_dir)
        return run_pipeline(settings, args.prefect, BACKFILL_FLOW, flow_parameters, local)
    finally:
        LISTENERS.remove(listener)
        stop()


def compact(args: argparse.Namespace) -> int:
    """`vectorflow compact`: one sorted, deduplicated file per partition and period."""
    from vectorflow.pipelines.maintenance import check_datasets, compact_job
    from vectorflow.pipelines.run import ThreadExecutor

    settings = load_settings(args.data_dir)
    datasets = check_datasets(args.dataset)

    def local():
        return compact_job(settings, datasets, ThreadExecutor(2))

    parameters = dict(datasets=args.dataset, data_dir=args.data_dir)
    return run_pipeline(settings, args.prefect, COMPACT_FLOW, parameters, local)


def prune(args: argparse.Namespace) -> int:
    """`vectorflow prune`: delete rows before a time, or a whole series (`--all`)."""
    from vectorflow.lake.catalog import refresh_catalog
    from vectorflow.lake.compact import prune as prune_lake
    from vectorflow.lake.compact import range_datasets
    from vectorflow.timeframes import parse_time

    settings = load_settings(args.data_dir)
    datasets = {ds.name: ds for ds in range_datasets()}
    dataset = datasets.get(args.dataset)
    if dataset is None:
        raise InvalidInput(
            f"unknown dataset {args.dataset!r}; expected one of {', '.join(datasets)}"
        )
    if (args.before is None) == (not args.all):
        raise InvalidInput("give --before TIME, or --all to delete the selected series entirely")
    if args.all and not (args.exchange and args.symbol):
        raise InvalidInput("--all deletes whole series: name them with --exchange and --symbol")
    before = None if args.all else parse_time(args.before, name="before")
    match = {
        "exchange": args.exchange,
        "market": args.market,
        "symbol_id": symbol_id(args.symbol) if args.symbol else None,
        "timeframe": args.series,
        "period": args.series,
    }
    reports = prune_lake(settings, dataset, before=before, match=match)
    refresh_catalog(settings)
    rows = [r.as_row() for r in reports]
    print(format_rows(COMPACT_COLUMNS, [[r.get(c) for c in COMPACT_COLUMNS] for r in rows]))
    if not reports:
        print("nothing matched: no partition of that series in the lake", file=sys.stderr)
        return INVALID
    return OK


def symbol_id(symbol: str) -> str:
    """The exchange id of a unified USDT symbol (`BTC/USDT:USDT` -> `BTCUSDT`), or it as given."""
    base_quote = symbol.split(":", 1)[0]
    return base_quote.replace("/", "")


def add_parsers(sub) -> None:
    """The market-data, backfill, compact and prune commands."""
    md = command_parser(
        sub,
        "market-data",
        "Take order book snapshots and fetch open interest and funding into the lake.",
        "vectorflow market-data --symbol BTC/USDT:USDT --dataset open_interest --period 1h",
    )
    _series_options(md)
    md.add_argument(
        "--dataset",
        action="append",
        help="orderbook_levels, open_interest or funding_rates (repeatable; default all)",
    )
    md.add_argument(
        "--period", help="open interest period: 5m 15m 30m 1h 4h 1d (default: [series] file)"
    )
    md.add_argument("--levels", type=int, help="order book levels per side (default 100)")
    md.add_argument("--since", help="UTC date or ISO time (default: resume, or 30 days back)")
    md.add_argument("--until", help="UTC date or ISO time, exclusive (default: now)")
    add_mode_option(md)
    md.set_defaults(run=market_data)

    bf = command_parser(
        sub,
        "backfill",
        "Fetch a long candle history with a progress bar; stop and rerun to resume.",
        "vectorflow backfill --symbol BTC/USDT --timeframe 1m --since 2023-01-01",
    )
    _series_options(bf)
    bf.add_argument("--timeframe", action="append", help="1m 5m 15m 30m 1h 4h 1d ... (repeatable)")
    bf.add_argument("--since", required=True, help="UTC date or ISO timestamp, inclusive")
    bf.add_argument("--until", help="UTC date or ISO timestamp, exclusive (default: now)")
    add_mode_option(bf)
    bf.set_defaults(run=backfill)

    cp = command_parser(
        sub,
        "compact",
        "Rewrite each partition as one sorted file per period and apply retention.",
        "vectorflow compact --dataset orderbook_levels",
    )
    cp.add_argument("--dataset", action="append", help="a dataset (repeatable; default all)")
    add_mode_option(cp)
    cp.set_defaults(run=compact)

    pr = command_parser(
        sub,
        "prune",
        "Delete a dataset's rows before a time, or whole series with --all.",
        "vectorflow prune --dataset orderbook_levels --before 2026-01-01",
    )
    pr.add_argument("--dataset", required=True, help="e.g. orderbook_levels, candles")
    pr.add_argument("--before", help="UTC date or ISO timestamp: rows before it go")
    pr.add_argument("--all", action="store_true", help="delete the selected series entirely")
    pr.add_argument("--exchange", help="only this exchange")
    pr.add_argument("--market", help="only this market (spot, linear)")
    pr.add_argument("--symbol", help="only this symbol (BTC/USDT, BTC/USDT:USDT or BTCUSDT)")
    pr.add_argument("--series", help="only this timeframe (candles) or period (open interest)")
    pr.set_defaults(run=prune)


#: What `vectorflow demo` prints after landing market data: one row of each new view.
DEMO_QUERIES = (
    "SELECT exchange, market, symbol, snapshot_time, mid, spread_bps, bid_depth_50bps_quote, "
    "ask_depth_50bps_quote, imbalance_50bps FROM orderbook_stats "
    "ORDER BY snapshot_time DESC, exchange, market LIMIT 1",
    "SELECT base_quote, exchange, market, price_time, close, exchange_spread_bps, basis_bps, "
    "volume_share_24h FROM market_snapshot WHERE market = 'linear' ORDER BY exchange LIMIT 1",
)


def demo_market_data(data_dir: str | None) -> int:
    """The demo's market data: order books, open interest and funding of the demo symbols."""
    from flows.market_data import ingest_market_data

    print("\norder books, open interest (5m) and funding:", flush=True)
    return run_flow(
        ingest_market_data,
        exchanges=["binance", "bybit"],
        markets=["spot", "linear"],
        symbols=["BTC/USDT", "BTC/USDT:USDT"],
        data_dir=data_dir,
    )
