"""The capture-orderbook command: keep an order book from its WebSocket stream for a while."""

from __future__ import annotations

import argparse
import sys

from vectorflow.cli import OK, UNITS_FAILED, arguments, command_parser
from vectorflow.cli.output import format_rows
from vectorflow.config import load_settings

CAPTURE_COLUMNS = [
    "exchange",
    "market",
    "symbol",
    "updates",
    "resyncs",
    "reconnects",
    "snapshots_written",
    "rows_written",
    "first",
    "last",
]


def capture_orderbook(args: argparse.Namespace) -> int:
    """`vectorflow capture-orderbook`: a bounded stream capture into orderbook_levels."""
    from vectorflow.errors import CircuitOpen
    from vectorflow.lake.catalog import refresh_catalog
    from vectorflow.pipelines.orderbook_stream import capture_order_book, check_capture

    check_capture(args.exchange, args.market, args.seconds, args.depth, args.every)
    settings = load_settings(args.data_dir)
    try:
        report = capture_order_book(
            args.exchange,
            args.market,
            args.symbol,
            settings,
            seconds=args.seconds,
            depth=args.depth,
            every=args.every,
        )
    except CircuitOpen as exc:
        print(f"skipped: {exc} {' '.join(getattr(exc, '__notes__', []))}", file=sys.stderr)
        return UNITS_FAILED
    refresh_catalog(settings)
    row = report.as_row()
    print(format_rows(CAPTURE_COLUMNS, [[row.get(c) for c in CAPTURE_COLUMNS]]))
    print(report.summary())
    if report.snapshots_written == 0:
        print("error: the stream gave no usable snapshot within the window", file=sys.stderr)
        return UNITS_FAILED
    return OK


def add_parsers(sub) -> None:
    """The capture-orderbook command."""
    cap = command_parser(
        sub,
        "capture-orderbook",
        "Keep an order book from the exchange's WebSocket stream for a while and land a snapshot "
        "of its top levels at a fixed cadence (orderbook_levels, source 'stream').",
        "vectorflow capture-orderbook --exchange bybit --market linear --symbol BTC/USDT:USDT "
        "--seconds 60 --depth 50 --every 1s",
    )
    cap.add_argument("--exchange", required=True, help="binance or bybit")
    cap.add_argument("--market", required=True, help="spot or linear")
    cap.add_argument("--symbol", required=True, help="unified symbol: BTC/USDT, BTC/USDT:USDT")
    cap.add_argument("--seconds", type=arguments.positive_number, required=True,
                     help="how long to capture")  # fmt: skip
    cap.add_argument("--depth", type=arguments.count, default=50,
                     help="levels per side to store (1-200)")  # fmt: skip
    cap.add_argument("--every", default="1s", help="snapshot cadence: 500ms, 1s, 1m (default 1s)")
    cap.set_defaults(run=capture_orderbook)
