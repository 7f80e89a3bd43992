"""`vectorflow playbook --from T1 --to T2`: a replay of playbooks over a range, and its comparison.

Before a Grok replay starts, its cost is shown: the requests it would send (the answers already
cached cost nothing) and their estimated tokens. `--dry-run` stops there. In a terminal the run
asks for confirmation (`--yes` skips it); with stdin not a terminal it never prompts, and the
token budget bounds what it spends.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from vectorflow.cli import INVALID, OK, UNITS_FAILED
from vectorflow.cli.output import format_rows

COLUMNS = (
    "source", "playbooks", "directional", "no_trade", "share_triggered", "win_rate", "avg_r",
    "avg_r_95ci", "avoided_loss_share", "brier",
)  # fmt: skip


def _units(args: argparse.Namespace, settings) -> tuple:
    from vectorflow.pipelines.candles import plan_ingest

    exchanges = args.exchange or settings.series.exchanges
    markets = args.market or settings.series.markets
    return plan_ingest(exchanges, markets, args.symbol, args.timeframe).units


def _estimate(plan, settings) -> Counter:
    """What the Grok part of the replay would send, summed over the series."""
    from vectorflow.pipelines.playbook_ticks import market_ticks
    from vectorflow.playbooks.replay import estimate_series
    from vectorflow.playbooks.writer import WriteContext

    ctx = WriteContext(
        config=settings.playbooks,
        lake=settings.storage,
        run_id=plan.replay_id(settings.playbooks.model),
        timeframes=tuple(settings.series.timeframes),
        tpo_row_sizes=dict(settings.tpo_row_sizes),
        ticks=market_ticks(plan.units, settings),
    )
    total: Counter = Counter()
    for unit in plan.units:
        total.update(estimate_series(unit, plan, ctx))
    return total


def _print_plan(plan, settings, budget: int) -> Counter | None:
    count = len(plan.units) * len(plan.as_ofs)
    print(
        f"replay {plan.replay_id(settings.playbooks.model)}: {len(plan.units)} series x "
        f"{len(plan.as_ofs)} as_of times = {count} playbooks per source "
        f"({', '.join(plan.sources)})"
    )
    if "grok" not in plan.sources:
        return None
    cost = _estimate(plan, settings)
    print(
        f"grok ({settings.playbooks.model}): {cost['requests']} requests to send "
        f"(~{cost['tokens']:,} tokens estimated, repairs not counted); {cost['cached']} "
        f"answered from the cache, {cost['stale']} skipped as stale; token budget {budget:,}"
    )
    return cost


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        return True  # scripted: never prompt; the token budget bounds the spend
    answer = input("send these requests? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _comparison_rows(report: dict) -> list[list]:
    rows = []
    for row in report["comparison"]:
        low, high = row["avg_r_low"], row["avg_r_high"]
        interval = None if low is None else f"{low:.3f} to {high:.3f}"
        values = {**row, "avg_r_95ci": interval}
        rows.append([round(v, 3) if isinstance(v, float) else v for v in map(values.get, COLUMNS)])
    return rows


def replay(args: argparse.Namespace, settings) -> int:
    """Plan, show the cost, run the replay flow and print the comparison."""
    from vectorflow.cli.runs import print_rows, run_command
    from vectorflow.playbooks.replay import replay_plan, replay_report

    if args.as_of:
        print("error: --as-of and --from are exclusive (a replay has its own times)",
              file=sys.stderr)
        return INVALID
    if not args.to:
        print("error: --from needs --to (the last as_of of the replay)", file=sys.stderr)
        return INVALID
    args.every, args.source = args.every or "4h", args.source or "rules"
    plan = replay_plan(_units(args, settings), args.from_, args.to, args.every, args.source)
    budget = args.budget if args.budget is not None else settings.playbooks.token_budget
    cost = _print_plan(plan, settings, budget)
    if args.dry_run:
        return OK
    if cost is not None and cost["requests"] and not args.yes and not _confirmed():
        print("nothing sent")
        return OK

    def local():
        import uuid

        from vectorflow.pipelines.playbook_jobs import (
            budgeted,
            replay_job,
            replay_mode,
            writer_mode,
        )
        from vectorflow.pipelines.run import ThreadExecutor

        run_settings = budgeted(settings, args.budget)
        mode = replay_mode(plan.sources, args.source, lambda: writer_mode(run_settings))
        workers = ThreadExecutor(args.concurrency or settings.playbooks.concurrency)
        run = replay_job(run_settings, plan, workers, replay_id=plan.replay_id(
            settings.playbooks.model), budget_key=uuid.uuid4().hex, mode=mode)  # fmt: skip
        found = [r.as_row() for r in run.results]
        return found, any(r["status"] == "failed" for r in found)

    parameters = dict(
        start=args.from_, end=args.to, every=args.every, source=args.source,
        exchanges=args.exchange or settings.series.exchanges,
        markets=args.market or settings.series.markets, symbols=args.symbol,
        timeframes=args.timeframe, token_budget=args.budget, data_dir=args.data_dir,
    )  # fmt: skip
    rows, failed = run_command(settings, args.prefect, REPLAY_FLOW, parameters, local)
    if rows is None:
        return UNITS_FAILED
    print_rows(rows)
    replay_id = plan.replay_id(settings.playbooks.model)
    _print_comparison(
        replay_report(settings.storage, plan, replay_id, settings.playbooks.horizon_bars)
    )
    return UNITS_FAILED if failed else OK


REPLAY_FLOW = "flows.replay:replay_playbooks"


def _print_comparison(report: dict) -> None:
    """The replay's playbooks, graded, and the sources compared on the same as_of set."""
    print(
        f"\n{report['playbooks']} playbooks from {report['from']} to {report['to']}, "
        f"{report['graded']} graded"
    )
    print(format_rows(COLUMNS, _comparison_rows(report)))
    for row in report["comparison"]:
        statuses = ", ".join(f"{n} {s}" for s, n in row["statuses"].items())
        print(f"  {row['source']}: {statuses or 'no playbooks'}")
    print("(only the series and as_of times every source has graded are compared)")
