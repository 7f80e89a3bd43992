"""`vectorflow signals`: bring one series' stored signals up to date, and print them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vectorflow.cli import OK, arguments, command_parser
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd


def _fmt(value: object, digits: int = 2) -> str:
    import pandas as pd

    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def describe(row: dict, events: pd.DataFrame) -> str:
    """The signals of one bar as a few readable lines, then the latest trap events."""
    import pandas as pd

    pct = {
        k: (None if pd.isna(row.get(k)) else row[k] * 100)
        for k in ("natr", "oi_change", "price_change", "funding_annualized")
    }
    lines = [
        f"as of {_fmt(row['as_of'])}",
        f"TPO session {_fmt(row['tpo_session'])} (row size {_fmt(row['tpo_row_size'])}): "
        f"POC {_fmt(row['tpo_poc'])}  VAH {_fmt(row['tpo_vah'])}  VAL {_fmt(row['tpo_val'])}  "
        f"IB {_fmt(row['tpo_ib_low'])}-{_fmt(row['tpo_ib_high'])}  "
        f"poor high {_fmt(row['tpo_poor_high'])}  poor low {_fmt(row['tpo_poor_low'])}",
        f"volume profile: POC {_fmt(row['vp_poc'])}  VAH {_fmt(row['vp_vah'])}  "
        f"VAL {_fmt(row['vp_val'])}",
        f"regime {_fmt(row['regime'])}: ADX {_fmt(row['adx'], 1)}  +DI {_fmt(row['plus_di'], 1)}  "
        f"-DI {_fmt(row['minus_di'], 1)}  NATR {_fmt(pct['natr'])}%  "
        f"(rank {_fmt(row['natr_rank'])})",
        f"last trap: {_fmt(row['last_trap_type'])} at {_fmt(row['last_trap_level'])} "
        f"({_fmt(row['last_trap_time'])})",
        f"open interest: {_fmt(row['oi_quadrant'])}  ΔOI {_fmt(pct['oi_change'])}%  "
        f"Δprice {_fmt(pct['price_change'])}%  z {_fmt(row['oi_zscore'])}  "
        f"funding {_fmt(pct['funding_annualized'])}%/yr",
    ]
    if len(events):
        lines.append("latest trap events:")
        for event in events.tail(5).itertuples():
            lines.append(
                f"  {_fmt(event.confirm_time)}  {event.type:<10} {event.level_source:<14}"
                f" level {_fmt(event.level)}"
                + (
                    ""
                    if pd.isna(event.invalidated_time)
                    else f"  invalidated {_fmt(event.invalidated_time)}"
                )
            )
    return "\n".join(lines)


def _said(report, args, settings, unit) -> list[str]:
    """What the update did to stored rows, when it rewrote any, and what will undo it."""
    from vectorflow.pipelines.lineage import signal_options

    detail, lines = report.detail, []
    replaced = detail.get("rows_replaced", 0)
    if detail.get("stale_reason") == "options_changed":
        lines.append(
            f"options {signal_options(settings, unit, args.tpo_row_size)} differ from the stored "
            f"rows' {detail.get('stored_options')}: recomputed {report.rows_written:,} bars "
            f"from {detail['stale_from']} ({replaced:,} stored rows replaced)"
        )
    elif detail.get("stale_reason"):
        lines.append(f"stale since {detail['stale_from']} ({detail['stale_reason']}): "
                     f"recomputed {report.rows_written:,} bars")  # fmt: skip
    elif args.recompute and report.rows_written:
        lines.append(f"recomputed {report.rows_written:,} bars from {report.first} "
                     f"({replaced:,} stored rows replaced)")  # fmt: skip
    configured = settings.tpo_row_sizes.get(unit.symbol)
    if args.tpo_row_size is not None and args.tpo_row_size != configured:
        lines.append(
            f"note: [tpo_row_sizes] gives {unit.symbol} {configured or 'the default row size'}; "
            "scheduled runs store that again (set it in vectorflow.toml to keep this one)"
        )
    return lines


def signals(args: argparse.Namespace) -> int:
    """Bring the stored signals of one series up to date with the options given, and print
    them at `--as-of` (default: latest)."""
    import pandas as pd

    from vectorflow.lake.catalog import read_view, refresh_catalog
    from vectorflow.pipelines.candles import plan_ingest
    from vectorflow.pipelines.signals import update_signals
    from vectorflow.timeframes import ms_to_iso, parse_time

    settings = load_settings(args.data_dir)
    plan = plan_ingest([args.exchange], [args.market], [args.symbol], [args.timeframe])
    (unit,) = plan.units
    if args.since and not args.recompute:
        raise InvalidInput("--since goes with --recompute (recompute the bars from then on)")
    since = parse_time(args.since, name="--since") if args.since else 0
    report = update_signals(unit, settings, tpo_row_size=args.tpo_row_size,
                            recompute_since=since if args.recompute else None)  # fmt: skip
    refresh_catalog(settings)
    series = {
        "exchange": unit.exchange,
        "market": unit.market,
        "symbol": unit.symbol,
        "timeframe": unit.timeframe,
    }
    rows = read_view(settings.storage, "signals", series).sort_values("as_of")
    if rows.empty:
        raise InvalidInput(f"no candles stored for {unit.label}: run `vectorflow ingest` first")
    if args.as_of:
        as_of = pd.Timestamp(parse_time(args.as_of, name="--as-of"), unit="ms")
        rows = rows[rows["as_of"] <= as_of]
        if rows.empty:
            raise InvalidInput(
                f"--as-of {ms_to_iso(int(as_of.value // 10**6))} is before the "
                f"first stored bar of {unit.label}"
            )
    row = rows.iloc[-1].to_dict()
    events = read_view(settings.storage, "trap_events", series).sort_values("confirm_time")
    events = events[events["confirm_time"] <= row["as_of"]]
    for line in _said(report, args, settings, unit):
        print(line)
    print(f"{unit.label}\n{describe(row, events)}")
    return OK


def add_parsers(sub) -> None:
    """The signals command."""
    parser = command_parser(
        sub,
        "signals",
        "Compute, store and print a series' signals (TPO, regime, traps, OI).",
        "vectorflow signals --exchange binance --market spot --symbol BTC/USDT --timeframe 1h",
    )
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--market", required=True)
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--timeframe", required=True)
    parser.add_argument("--as-of", help="UTC date or ISO timestamp (default: the latest bar)")
    parser.add_argument(
        "--tpo-row-size",
        type=arguments.positive_number,
        help="TPO row size in quote currency (stored rows of another size are recomputed)",
    )
    parser.add_argument(
        "--recompute", action="store_true", help="recompute the stored bars, current or not"
    )
    parser.add_argument("--since", help="with --recompute: only the bars from this UTC time on")
    parser.set_defaults(run=signals)
