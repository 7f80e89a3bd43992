"""`vectorflow status`: a health check of the whole system.

Per series the freshness and gaps and how far its signals are current, the last run of each
deployment, the circuit breakers, the rate limiters' use and the lake's size. Exit codes: 0
healthy, 3 something configured is stale or missing (stale signals too), 4 something is broken;
broken wins over stale. Broken is: an open breaker, a scheduled deployment whose latest finished
run failed or crashed, a run that is open with no live process, a concurrency slot held with no
open run (both cleared by `vectorflow reconcile`), a Prefect API that was configured but does
not answer. A manual deployment (backfill, compact-lake: no schedule) is judged only while it
runs: its failed last run is reported with its message, and does not make the system broken.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vectorflow.cli import arguments, command_parser

HEALTHY, STALE, BROKEN = 0, 3, 4
FAILED_STATES = {"FAILED", "CRASHED"}


def _iso(seconds: float | None) -> str | None:
    from vectorflow.timeframes import ms_to_iso

    return None if seconds is None else ms_to_iso(int(seconds * 1000))


def prefect_api_url(data_dir: Path) -> str | None:
    """The Prefect API to ask: PREFECT_API_URL, else the one `vectorflow up` started."""
    from vectorflow.cli.ops import read_stack, stack_file

    return os.environ.get("PREFECT_API_URL") or read_stack(stack_file(data_dir)).get("api_url")


def schedule_text(deployment: dict) -> str:
    """`*/5 * * * *`, `*/5 * * * * (paused)`, or `manual` for a deployment without schedules."""
    crons = [s["schedule"].get("cron") or "interval" for s in deployment.get("schedules") or []]
    if not crons:
        return "manual"
    return " | ".join(crons) + (" (paused)" if deployment.get("paused") else "")


def finished_runs(api_url: str, deployment_id: str, limit: int = 20) -> list[dict]:
    """The deployment's latest runs that ended Completed, Failed or Crashed, newest first (not
    cancelled ones: a snapshot cancelled as overlapping says nothing of the job's health)."""
    from vectorflow.cli.stranded import post

    return post(api_url, "/flow_runs/filter", {
        "deployments": {"id": {"any_": [deployment_id]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}},
        "sort": "START_TIME_DESC", "limit": limit})  # fmt: skip


def _said(deployment: str, run: dict) -> str:
    state = run["state"]
    return f"deployment {deployment}: run {run['name']!r} {state['name']}: {state.get('message')}"


def deployment_runs(api_url: str) -> tuple[list[list], list[str], list[str]]:
    """Per deployment a row (schedule, the run it is judged by); what is broken (a scheduled
    job whose latest scheduled run failed); what is only noted (a run started by hand that
    failed since: a manual job's, or a mistyped one of a scheduled job, with its message)."""
    from vectorflow.cli.stranded import post

    rows, broken, noted = [], [], []
    for d in sorted(post(api_url, "/deployments/filter", {}), key=lambda d: d["name"]):
        schedule = schedule_text(d)
        runs = finished_runs(api_url, d["id"])
        scheduled = [r for r in runs if r.get("auto_scheduled")] if schedule != "manual" else []
        judged = scheduled[0] if scheduled else None
        by_hand = [r for r in runs if not r.get("auto_scheduled")][:1]
        shown = judged or (by_hand or [{}])[0]
        state = shown.get("state") or {}
        rows.append([d["name"], schedule, shown.get("name"), state.get("type"),
                     shown.get("start_time"), (state.get("message") or "")[:120] or None])
        if judged and judged["state"]["type"] in FAILED_STATES:
            broken.append(_said(d["name"], judged))
        newer = by_hand and (not judged or by_hand[0]["start_time"] > judged["start_time"])
        if newer and by_hand[0]["state"]["type"] in FAILED_STATES:
            noted.append(_said(d["name"], by_hand[0]))
    return rows, broken, noted


def stranded(api_url: str) -> list[str]:
    """Runs open with no live process and slots held with no open run, with how to clear."""
    from vectorflow.cli.stranded import leaked_slots, stranded_runs

    clear = "clear it with `vectorflow reconcile` (or `vectorflow down` and `up`)"
    found = [f"{s.describe()}: {clear}" for s in stranded_runs(api_url)]
    found += [f"deployment {name} holds {slots} concurrency slot(s) with no open run, so its "
              f"next runs wait or are cancelled: {clear}"
              for name, (_, slots) in leaked_slots(api_url).items()]  # fmt: skip
    return found


def _series(args, settings, now: int) -> list[str]:
    """Freshness and gaps per series; what is stale or missing."""
    from vectorflow.cli.output import format_rows
    from vectorflow.pipelines.health import MISSING, check_grace, series_health
    from vectorflow.pipelines.health import STALE as STALE_STATE

    health = series_health(settings, now, check_grace(args.grace_minutes))
    print(f"series (at {args.now or 'the current time'}, grace {args.grace_minutes:g} min)")
    columns = ["dataset", "exchange", "market", "symbol", "series", "last_time", "lag_minutes",
               "gaps", "state"]  # fmt: skip
    print(format_rows(columns, [list(h.as_row().values()) for h in health], args.format))
    return [
        f"{h.dataset} {h.exchange} {h.market} {h.symbol} {h.series} is {h.state}"
        for h in health
        if h.state in (STALE_STATE, MISSING)
    ]


#: Per series with signals: the view's judgement (`signal_coverage`: code, open interest and
#: funding, candles) joined with the settings' options (`want`), which the lake cannot know.
_SIGNAL_STATE_SQL = """
WITH judged AS (
    SELECT s.exchange, s.market, s.symbol, s.timeframe, s.as_of,
           min(s.as_of) FILTER (WHERE s.signal_options IS DISTINCT FROM w.options)
               OVER (PARTITION BY s.exchange, s.market, s.symbol, s.timeframe) AS options_from
    FROM signals s JOIN want w USING (exchange, market, symbol, timeframe)
), options AS (
    SELECT exchange, market, symbol, timeframe, any_value(options_from) AS options_from,
           max(as_of) FILTER (WHERE as_of < options_from) AS before_options
    FROM judged GROUP BY ALL
)
SELECT c.exchange, c.market, c.symbol, c.timeframe, c.rows, c.missing,
       epoch_ms(c.current_through), epoch_ms(c.stale_from), c.stale_reason,
       epoch_ms(o.options_from), epoch_ms(o.before_options)
FROM signal_coverage c LEFT JOIN options o USING (exchange, market, symbol, timeframe)
ORDER BY ALL"""


def _signals(args, settings) -> list[str]:
    """How far each series' stored signals are current, and why a range is stale: one query of
    the `signal_coverage` view, with the options the settings choose now compared in it."""
    from vectorflow.cli.output import format_rows
    from vectorflow.lake.catalog import connect_in_memory
    from vectorflow.pipelines.lineage import signal_options
    from vectorflow.timeframes import ms_to_iso
    from vectorflow.units import Unit

    print("\nsignals (current through: the last stored bar computed from today's inputs)")
    con = connect_in_memory(settings.storage)
    try:
        series = con.execute("SELECT DISTINCT exchange, market, symbol, timeframe FROM signals "
                             "ORDER BY ALL").fetchall()  # fmt: skip
        con.execute("CREATE TEMP TABLE want (exchange VARCHAR, market VARCHAR, symbol VARCHAR, "
                    "timeframe VARCHAR, options VARCHAR)")  # fmt: skip
        if series:
            con.executemany("INSERT INTO want VALUES (?, ?, ?, ?, ?)",
                            [(*s, signal_options(settings, Unit(*s))) for s in series])  # fmt: skip
        found = con.execute(_SIGNAL_STATE_SQL).fetchall()
    finally:
        con.close()
    rows, problems = [], []
    for *key, stored, new_bars, through, stale_from, reason, options_from, before in found:
        if options_from is not None and (stale_from is None or options_from <= stale_from):
            stale_from, reason, through = options_from, "options_changed", before
        label = " ".join(key)
        when = None if stale_from is None else ms_to_iso(stale_from)
        rows.append([*key, stored, None if through is None else ms_to_iso(through), when,
                     reason, new_bars])  # fmt: skip
        if reason:
            problems.append(f"signals of {label} are stale from {when} ({reason})")
    columns = ["exchange", "market", "symbol", "timeframe", "rows", "current_through",
               "stale_from", "stale", "new_bars"]  # fmt: skip
    print(format_rows(columns, rows, args.format))
    return problems


def _deployments(args, settings) -> tuple[list[str], list[str]]:
    """The latest finished run of each deployment, and the runs nobody runs; (what is broken,
    what is only noted). An API that was configured must answer."""
    from vectorflow.cli.output import format_rows

    api = prefect_api_url(settings.data_dir)
    print("\ndeployments (latest finished run)")
    if api is None:
        print("no Prefect API configured (PREFECT_API_URL, or `vectorflow up`): not checked")
        return [], []
    try:
        rows, broken, noted = deployment_runs(api)
        broken += stranded(api)
    except Exception as exc:  # noqa: BLE001 - any failure to ask is the API not answering
        print(f"Prefect API {api} does not answer: {type(exc).__name__}")
        return [f"Prefect API {api} does not answer: {type(exc).__name__}"], []
    columns = ["deployment", "schedule", "last_run", "state", "started", "message"]
    print(format_rows(columns, rows, args.format))
    return broken, noted


def _resilience(args, settings) -> list[str]:
    """Breakers, rate-limit use, blocks and transitions; the breakers that are open."""
    from vectorflow.cli.output import format_rows
    from vectorflow.exchanges.specs import all_budgets
    from vectorflow.resilience.guard import guard_for

    guard = guard_for(settings) if settings.state_path.exists() else None
    breakers = guard.breakers.states() if guard else []
    print("\ncircuit breakers (task kind, target)")
    columns = ["kind", "target", "state", "failures", "opened_at", "probe_at", "reason"]
    rows = [
        [b.kind, b.target, b.state, b.failures, _iso(b.opened_at), _iso(b.retry_at), b.reason]
        for b in breakers
    ]
    print(format_rows(columns, rows, args.format))

    print("\nrate limits (use over the last window; server: the exchange's own count)")
    columns = ["budget", "limit", "window_s", "used", "use", "server_used", "server_age_s"]
    rows = []
    for b in all_budgets().values():
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
    return [f"breaker {b.kind} {b.target} is open" for b in breakers if b.state == "open"]


def _lake(args, settings) -> None:
    from vectorflow.cli.output import format_rows
    from vectorflow.pipelines.health import lake_usage

    print(f"\nlake {settings.storage.root}")
    usage = lake_usage(settings.storage)
    rows = [[u.dataset, u.files, u.compacted, round(u.bytes / 2**20, 2)] for u in usage]
    print(format_rows(["dataset", "files", "compacted", "size_mib"], rows, args.format))


def status(args: argparse.Namespace) -> int:
    """Print the system's health; the exit code says healthy, stale or broken."""
    from vectorflow.config import load_settings
    from vectorflow.timeframes import now_ms, parse_time

    settings = load_settings(args.data_dir)
    now = parse_time(args.now, name="--now") if args.now else now_ms()
    stale = _series(args, settings, now) + _signals(args, settings)
    broken, noted = _deployments(args, settings)
    broken += _resilience(args, settings)
    _lake(args, settings)
    verdict = "broken" if broken else "stale" if stale else "healthy"
    print(f"\n{verdict}" + "".join(f"\n  - {p}" for p in broken + stale))
    print("".join(f"  note: {n} (started by hand: reported, not counted)\n" for n in noted), end="")
    return BROKEN if broken else STALE if stale else HEALTHY


def add_parsers(sub) -> None:
    """The status command."""
    parser = command_parser(
        sub,
        "status",
        "Health check: freshness and gaps per series, deployments' last runs and stranded runs, "
        "circuit breakers, rate limits, lake size. Exit 0 healthy, 3 stale or missing, 4 broken.",
        "vectorflow status --grace-minutes 30",
    )
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument(
        "--transitions",
        type=arguments.non_negative,
        default=10,
        help="how many breaker transitions to show",
    )
    parser.add_argument(
        "--grace-minutes",
        type=arguments.seconds,  # a non-negative finite number (of minutes here)
        default=15.0,
        help="how late a series may be, beyond one step, before it is stale (default 15)",
    )
    parser.add_argument("--now", help="judge freshness at this UTC time (default: now)")
    parser.set_defaults(run=status)
