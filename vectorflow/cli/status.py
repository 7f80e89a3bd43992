"""`vectorflow status`: circuit breakers, rate-limit use and blocks, read from `state.db`."""

from __future__ import annotations

import argparse

from vectorflow.cli import OK, command_parser


def _iso(seconds: float | None) -> str | None:
    from vectorflow.timeframes import ms_to_iso

    return None if seconds is None else ms_to_iso(int(seconds * 1000))


def status(args: argparse.Namespace) -> int:
    """Print each breaker's state, each budget's use over its window, running blocks."""
    from vectorflow.exchanges.specs import all_budgets
    from vectorflow.output import format_rows
    from vectorflow.resilience.guard import guard_for
    from vectorflow.settings import load_settings

    settings = load_settings(args.data_dir)
    exists = settings.state_path.exists()
    guard = guard_for(settings) if exists else None
    print(f"state: {settings.state_path}" + ("" if exists else " (none yet: nothing recorded)"))
    breakers = guard.breakers.states() if guard else []
    print("\ncircuit breakers (task kind, target)")
    columns = ["kind", "target", "state", "failures", "opened_at", "probe_at", "reason"]
    rows = [
        [b.kind, b.target, b.state, b.failures, _iso(b.opened_at), _iso(b.retry_at), b.reason]
        for b in breakers
    ]
    print(format_rows(columns, rows, args.format))

    print("\nrate limits (use over the last window; server: the exchange's own count)")
    budgets = list(all_budgets().values())
    columns = ["budget", "limit", "window_s", "used", "use", "server_used", "server_age_s"]
    rows = []
    for b in budgets:
        use = guard.limiter.usage([b])[0] if guard else None
        limit = settings.resilience.budget_limit(b.name, b.limit)
        used = use.used if use else 0
        window = b.window_seconds * settings.resilience.time_scale
        server = (use.server_used, use.server_age_seconds) if use else (None, None)
        rows.append([b.name, limit, window, used, round(used / limit, 3), *server])
    print(format_rows(columns, rows, args.format))

    blocks = guard.limiter.blocks() if guard else []
    print("\nexchanges blocked (Retry-After, bans)")
    rows = [[e, _iso(since), _iso(until), reason] for e, since, until, reason in blocks]
    print(format_rows(["exchange", "since", "until", "reason"], rows, args.format))

    moves = guard.breakers.transitions(args.transitions) if guard else []
    print("\nlatest breaker transitions")
    rows = [[_iso(t), k, tg, a, b, why] for t, k, tg, a, b, why in moves]
    print(format_rows(["time", "kind", "target", "from", "to", "reason"], rows, args.format))
    return OK


def add_parsers(sub) -> None:
    """The status command."""
    parser = command_parser(
        sub,
        "status",
        "Show each circuit breaker's state and the rate limiter's current use.",
        "vectorflow status --transitions 20",
    )
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument(
        "--transitions", type=int, default=10, help="how many breaker transitions to show"
    )
    parser.set_defaults(run=status)
