"""`vectorflow playbook`, `vectorflow grade` and `vectorflow llm-sim`.

Playbooks are printed from what the lake stored, as data: every text field is shown with
non-printable characters replaced, never interpreted.
"""

from __future__ import annotations

import argparse
import sys

from vectorflow.cli import (
    INVALID,
    OK,
    UNITS_FAILED,
    arguments,
    command_parser,
)
from vectorflow.cli.modes import add_mode_option
from vectorflow.cli.output import format_rows
from vectorflow.cli.runs import flow_rows, run_command
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput


def printable(text: object) -> str:
    """`text` with control characters shown as `?` (model text is shown, never interpreted)."""
    return "".join(ch if ch.isprintable() or ch in "\n" else "?" for ch in str(text))


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:,.8g}"


def render_playbook(record) -> str:
    """A stored playbook as readable text: series, source and status first."""
    from vectorflow.timeframes import ms_to_iso

    model = f" ({record.model}, {record.prompt_version})" if record.source == "grok" else ""
    lines = [
        f"{record.exchange} {record.market} {record.symbol} {record.timeframe}  as of "
        f"{ms_to_iso(record.as_of)}",
        f"  source      {record.source}{model}{'  [cached]' if record.cached else ''}",
        f"  status      {record.status}",
    ]
    if record.bias is not None:
        lines.append(f"  bias        {record.bias}   confidence {record.confidence}")
    if record.entry_type is not None:
        lines += [
            f"  entry       {record.entry_type} {_price(record.entry_low)} – "
            f"{_price(record.entry_high)}   trigger: {printable(record.entry_trigger)}",
            f"  stop loss   {_price(record.stop_loss)}",
            "  targets     " + "   ".join(f"{_price(p)} ({s:.0%})" for p, s in record.targets),
            f"  risk        {record.max_risk:.2%} of equity, reward-to-risk {record.rr_ratio:.2f}",
        ]
    if record.invalidation:
        lines.append(f"  invalid if  {printable(record.invalidation)}")
    if record.rationale:
        lines.append(f"  rationale   {printable(record.rationale)}")
    if record.levels_used:
        prices = list(record.level_prices) or [None] * len(record.levels_used)
        cited = [
            name if price is None else f"{name} {_price(price)}"
            for name, price in zip(record.levels_used, prices, strict=False)
        ]
        lines.append(f"  levels used {', '.join(cited)}")
    if record.valid_until is not None:
        lines.append(f"  valid until {ms_to_iso(record.valid_until)}")
    if record.error:
        lines.append(f"  note        {printable(record.error)}")
    if record.source == "grok" and not record.cached:
        lines.append(
            f"  cost        {record.tokens_in} tokens in, {record.tokens_out} out, "
            f"{record.requests} requests, {record.latency_ms} ms"
        )
    return "\n".join(lines)


def playbook(args: argparse.Namespace) -> int:
    """`vectorflow playbook`: write the playbooks of the given series and print them."""
    from vectorflow.pipelines.candles import plan_ingest
    from vectorflow.playbooks.store import read_playbooks
    from vectorflow.timeframes import now_ms, parse_time

    settings = load_settings(args.data_dir)
    if args.from_:
        from vectorflow.cli.replay import replay

        return replay(args, settings)
    replay_only = [name for name in ("to", "every", "source", "dry_run", "yes")
                   if getattr(args, name) not in (None, False)]
    if replay_only:
        option = "--" + replay_only[0].replace("_", "-")
        print(f"error: {option} applies to a replay: give --from and --to", file=sys.stderr)
        return INVALID
    parameters = dict(
        exchanges=args.exchange or settings.series.exchanges,
        markets=args.market or settings.series.markets,
        symbols=args.symbol,
        timeframes=args.timeframe,
        as_of=args.as_of,
        token_budget=args.budget,
    )
    plan = plan_ingest(parameters["exchanges"], parameters["markets"], args.symbol, args.timeframe)
    if args.as_of:
        parse_time(args.as_of, name="--as-of", latest=now_ms())
    require_candles(settings.storage, plan.units)
    workers = args.concurrency or settings.playbooks.concurrency

    def local():
        import uuid

        from vectorflow.pipelines.playbook_jobs import budgeted, playbooks_job
        from vectorflow.pipelines.run import ThreadExecutor

        run_settings = budgeted(settings, args.budget)
        as_ofs = [parse_time(args.as_of, name="--as-of")] if args.as_of else [None]
        run = playbooks_job(run_settings, list(plan.units), as_ofs, ThreadExecutor(workers),
                            uuid.uuid4().hex)  # fmt: skip
        for note in run.notes:
            print(note, file=sys.stderr)
        rows = [r.as_row() for r in run.results]
        return rows, any(r["status"] == "failed" for r in rows)

    flow_parameters = dict(parameters, data_dir=args.data_dir)  # [playbooks] concurrency
    rows, failed = run_command(settings, args.prefect, PLAYBOOK_FLOW, flow_parameters, local)
    if rows is None:
        return UNITS_FAILED
    ids = [r["playbook_id"] for r in rows if r.get("playbook_id")]
    for record in read_playbooks(settings.storage, ids):
        print(render_playbook(record), end="\n\n")
    for row in rows:
        if not row.get("playbook_id"):
            print(f"error: {row['symbol']} {row['timeframe']}: {printable(row['error'])}")
    return UNITS_FAILED if failed else OK


def require_candles(lake, units) -> None:
    """InvalidInput naming the first series with no stored candle (no playbook is written)."""
    from vectorflow.playbooks.reads import last_close_time

    for unit in units:
        if last_close_time(lake, unit) is None:
            raise InvalidInput(f"no candles stored for {unit.label}: ingest them first")


def grade(args: argparse.Namespace) -> int:
    """`vectorflow grade`: grade past playbooks and print the outcomes and the scorecard."""
    from vectorflow.cli.commands import _print_query

    settings = load_settings(args.data_dir)

    def local():
        from vectorflow.pipelines.playbooks import grade as grade_now

        return grade_now(settings, args.horizon), False

    parameters = dict(horizon_bars=args.horizon, data_dir=args.data_dir)
    report, failed = run_command(settings, args.prefect, GRADE_FLOW, parameters, local)
    if report is None or failed:
        return UNITS_FAILED
    print(
        f"graded {report['graded']} of {report['candidates']} playbooks "
        f"({report['pending']} still open)"
    )
    if report["rows"]:
        columns = list(report["rows"][0])
        print(format_rows(columns, [[r[c] for c in columns] for r in report["rows"]]))
    print("\nscorecard:")
    _print_query(settings, "FROM playbook_scorecard ORDER BY ALL", "table")
    return OK


GRADE_FLOW = "flows.playbooks:grade_playbooks_flow"
PLAYBOOK_FLOW = "flows.playbooks:generate_playbooks"

DEMO_SERIES = dict(
    exchanges=["binance", "bybit"],
    markets=["spot", "linear"],
    symbols=["BTC/USDT", "BTC/USDT:USDT"],
    timeframes=["1h"],
)


def demo_playbooks(data_dir: str | None, *, days: int = 7) -> int:
    """The demo's playbook step: playbooks now and twice a day over `days` days, then graded."""
    from flows.playbooks import generate_playbooks, grade_playbooks_flow
    from vectorflow.playbooks.store import read_playbooks
    from vectorflow.timeframes import floor_ms, ms_to_iso, now_ms

    settings = load_settings(data_dir)
    latest = floor_ms(now_ms(), "1h")  # the close of the newest closed hourly candle
    as_ofs = [ms_to_iso(latest - k * 12 * 3_600_000) for k in range(2 * days + 1)]
    state = generate_playbooks(**DEMO_SERIES, as_of=as_ofs, data_dir=data_dir, return_state=True)
    rows = flow_rows(generate_playbooks, state)
    if rows is None:
        return UNITS_FAILED
    counts: dict[tuple, int] = {}
    for row in rows:
        key = (row.get("source"), row.get("playbook") or row["status"])
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{n} {src} {status}" for (src, status), n in sorted(counts.items()))
    print(f"\n{len(rows)} playbooks ({summary}). The newest for binance spot:\n")
    newest = [
        r["playbook_id"]
        for r in rows
        if r.get("playbook_id")
        and r["as_of"] == ms_to_iso(latest)
        and (r["exchange"], r["market"]) == ("binance", "spot")
    ]
    for record in read_playbooks(settings.storage, newest[-1:]):
        print(render_playbook(record))
    graded = grade_playbooks_flow(data_dir=data_dir, return_state=True)
    report = graded.result(raise_on_failure=False)
    if isinstance(report, BaseException):
        print(f"error: the grading flow failed: {printable(report)}", file=sys.stderr)
        return UNITS_FAILED
    print(f"\ngraded {report['graded']} playbooks ({report['pending']} still open); try:")
    print('  vectorflow sql "FROM playbook_scorecard"')
    print("  vectorflow playbook --exchange bybit --symbol BTC/USDT:USDT --timeframe 1h")
    return UNITS_FAILED if state.is_failed() or graded.is_failed() else OK


def llm_sim(args: argparse.Namespace) -> int:
    """`vectorflow llm-sim`: serve the fake OpenAI-compatible LLM until interrupted."""
    from vectorflow.sim.llm import serve_llm

    print(
        f"fake LLM on http://127.0.0.1:{args.port}/v1 — try:\n"
        f"  XAI_BASE_URL=http://127.0.0.1:{args.port}/v1 XAI_API_KEY=fake vectorflow playbook ...",
        flush=True,
    )
    serve_llm(port=args.port, latency=args.latency)
    return OK


def add_parsers(sub) -> None:
    """The playbook, grade and llm-sim commands."""
    p = command_parser(
        sub,
        "playbook",
        "Write trading playbooks (Grok with XAI_API_KEY, else rule-based) and print them; "
        "with --from and --to, replay them over a range, grade them and compare the sources.",
        "vectorflow playbook --exchange binance --market spot --symbol BTC/USDT --timeframe 1h\n"
        "  vectorflow playbook --symbol BTC/USDT --timeframe 4h --from 2026-01-01 "
        "--to 2026-03-31 --every 4h --source both --dry-run",
    )
    p.add_argument("--exchange", action="append", help="binance or bybit (repeatable)")
    p.add_argument("--market", action="append", help="spot or linear (repeatable)")
    p.add_argument("--symbol", action="append", required=True, help="BTC/USDT, BTC/USDT:USDT")
    p.add_argument("--timeframe", action="append", required=True, help="1h, 4h, ... (repeatable)")
    p.add_argument("--as-of", help="UTC time of the playbook (default: the newest closed candle)")
    p.add_argument(
        "--budget", type=arguments.count, help="token budget of this run (default: settings)"
    )
    p.add_argument(
        "--concurrency", type=arguments.count, help="series written at once (default: settings)"
    )
    p.add_argument("--from", dest="from_", metavar="T1", help="replay: first as_of (UTC)")
    p.add_argument("--to", metavar="T2", help="replay: last as_of (UTC date or ISO time)")
    p.add_argument("--every", help="replay: step between as_of times (default 4h)")
    p.add_argument("--source", help="replay: rules, grok or both (default rules)")
    p.add_argument("--dry-run", action="store_true",
                   help="replay: print the requests and estimated tokens, send nothing")
    p.add_argument("--yes", action="store_true", help="replay: do not ask before sending")
    add_mode_option(p)
    p.set_defaults(run=playbook)

    g = command_parser(
        sub,
        "grade",
        "Grade past playbooks against the candles that followed them; print the scorecard.",
        "vectorflow grade --horizon 48",
    )
    g.add_argument(
        "--horizon", type=arguments.count, help="bars before a playbook expires (default 48)"
    )
    add_mode_option(g)
    g.set_defaults(run=grade)

    s = command_parser(
        sub,
        "llm-sim",
        "Serve a fake OpenAI-compatible LLM (xAI's API shape) for offline playbooks.",
        "vectorflow llm-sim --port 8901",
    )
    s.add_argument("--port", type=arguments.port, default=8901)
    s.add_argument(
        "--latency", type=arguments.seconds, default=0.0, help="seconds before each answer"
    )
    s.set_defaults(run=llm_sim)
