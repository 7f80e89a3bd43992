"""`vectorflow backtest` (one series, through the `backtest` flow) and `vectorflow nightly`."""

from __future__ import annotations

import argparse
import sys

from vectorflow.cli import OK, UNITS_FAILED, command_parser, prefect_environment
from vectorflow.cli.output import format_rows
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput

BOARD_COLUMNS = [
    ("strategy", "strategy"),
    ("params", "params"),
    ("window_index", "window"),
    ("oos_total_return", "oos_return"),
    ("oos_sharpe_ratio", "oos_sharpe"),
    ("oos_max_drawdown", "oos_max_dd"),
    ("oos_win_rate", "oos_win_rate"),
    ("oos_profit_factor", "oos_pf"),
    ("oos_trades", "oos_trades"),
    ("is_total_return", "is_return"),
    ("is_sharpe_ratio", "is_sharpe"),
]


def _run_flow(flow, **parameters):
    """Run a flow in this process; (outcome, failed). InvalidInput inside it is raised here."""
    state = flow(**parameters, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, InvalidInput):
        raise outcome
    return outcome, state.is_failed()


def _short(value):
    return float(f"{value:.4g}") if isinstance(value, float) else value


def print_summary(summary: dict) -> None:
    """One series' leaderboard (best out-of-sample run per strategy), skips and report path."""
    print(
        f"{summary['exchange']} {summary['market']} {summary['symbol']} {summary['timeframe']}: "
        f"{summary['bars']} bars, {summary['split']} ({summary['windows']} window(s)), "
        f"signals {summary['signals']}, {summary['runs']} runs, {summary['trades']} trades, "
        f"{summary['seconds']} s"
    )
    rows = [[_short(row[k]) for k, _ in BOARD_COLUMNS] for row in summary["leaderboard"]]
    print(format_rows([h for _, h in BOARD_COLUMNS], rows))
    for name, why in summary["skipped"].items():
        print(f"{name}: not run ({why})")
    print(f"report: {summary['report']}")


def backtest(args: argparse.Namespace) -> int:
    """`vectorflow backtest`: check the request and the stored series, then run the flow."""
    from vectorflow.backtest.data import find_series
    from vectorflow.backtest.run import check_options
    from vectorflow.exchanges.specs import implied_market
    from vectorflow.settings.backtest import SeriesRef
    from vectorflow.timeframes import timeframe_ms

    settings = load_settings(args.data_dir)
    market = implied_market(args.symbol)
    if args.market and args.market != market:
        raise InvalidInput(f"symbol {args.symbol!r} is {market}, not {args.market!r}")
    timeframe_ms(args.timeframe)
    check_options(args.strategy or (), args.grid, args.metric)
    ref = SeriesRef(
        exchange=args.exchange, market=market, symbol=args.symbol, timeframe=args.timeframe
    )
    find_series(settings.storage, ref)  # nothing stored: invalid input, before Prefect starts
    prefect_environment()
    from flows.backtest import backtest as backtest_flow

    outcome, failed = _run_flow(
        backtest_flow,
        **ref.model_dump(),
        strategies=args.strategy,
        grid=args.grid,
        walk_forward=args.walk_forward,
        metric=args.metric,
        since=args.since,
        until=args.until,
        data_dir=args.data_dir,
    )
    if isinstance(outcome, BaseException):
        print(f"error: the backtest flow failed: {outcome}", file=sys.stderr)
        return UNITS_FAILED
    print_summary(outcome)
    return UNITS_FAILED if failed else OK


def nightly(args: argparse.Namespace) -> int:
    """`vectorflow nightly`: run the nightly flow once, now."""
    from vectorflow.backtest.run import check_options

    load_settings(args.data_dir)  # a malformed settings file is invalid input: exit 2 now
    check_options(args.strategy or (), args.grid, None)
    prefect_environment()
    from flows.nightly import nightly as nightly_flow

    outcome, failed = _run_flow(
        nightly_flow,
        strategies=args.strategy,
        grid=args.grid,
        walk_forward=args.walk_forward,
        data_dir=args.data_dir,
    )
    if isinstance(outcome, BaseException):
        print(f"error: the nightly flow failed: {outcome}", file=sys.stderr)
        return UNITS_FAILED
    for step, done in outcome["steps"].items():
        print(f"{step}: {done}")
    for summary in outcome["series"]:
        print()
        print_summary(summary)
    for failure in outcome["failed"]:
        print(f"failed: {failure}", file=sys.stderr)
    if not outcome["series"] and not outcome["failed"]:
        print("no series to backtest: nothing stored at the [backtest] timeframes")
    return UNITS_FAILED if failed else OK


def add_parsers(sub) -> None:
    """The backtest and nightly commands."""
    bt = command_parser(
        sub,
        "backtest",
        "Backtest the strategies on one stored series (vectorbt grids, out-of-sample leaderboard).",
        "vectorflow backtest --exchange binance --market linear --symbol BTC/USDT:USDT "
        "--timeframe 1h --strategy ma_cross --grid small --walk-forward",
    )
    bt.add_argument("--exchange", required=True, help="binance or bybit")
    bt.add_argument("--market", help="spot or linear (implied by the symbol)")
    bt.add_argument("--symbol", required=True, help="BTC/USDT (spot) or BTC/USDT:USDT (linear)")
    bt.add_argument("--timeframe", required=True, help="a stored timeframe, e.g. 1h")
    bt.add_argument("--strategy", action="append", help="strategy name (repeatable; default all)")
    bt.add_argument(
        "--grid", choices=["default", "small"], help="parameter grid (default: settings)"
    )
    bt.add_argument(
        "--walk-forward", action="store_true", help="rolling windows instead of one split"
    )
    bt.add_argument("--metric", help="in-sample metric that picks parameters (sharpe_ratio...)")
    bt.add_argument("--since", help="first candle (UTC date or ISO time; default: all stored)")
    bt.add_argument("--until", help="end, exclusive (UTC date or ISO time)")
    bt.set_defaults(run=backtest)

    night = command_parser(
        sub,
        "nightly",
        "Run the nightly flow once: compaction, signals, every series' backtests, grading.",
        "vectorflow nightly --grid small",
    )
    night.add_argument("--strategy", action="append", help="strategy name (repeatable)")
    night.add_argument("--grid", choices=["default", "small"], help="parameter grid")
    night.add_argument(
        "--walk-forward",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rolling windows or one split (default: settings)",
    )
    night.set_defaults(run=nightly)
