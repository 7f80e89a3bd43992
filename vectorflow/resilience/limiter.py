"""Rate limiter per exchange budget, shared by every process on the host through `state.db`.

Each request reserves its weight on every budget it counts against before it is sent (one
SQLite transaction). A budget admits a request while the weight reserved over the last window,
plus what the server reported beyond that, leaves room for it:

- Sliding window. Every span of one window (1 % longer than the exchange's, for jitter in
  arrival times) holds at most the budget. That keeps within a fixed-window exchange (Binance
  resets its count each minute) and a sliding one alike, with no reliance on clocks agreeing
  on where a minute starts; in a long backfill it still sends the whole budget every window.
- The server's own count. After each Binance response, `X-MBX-USED-WEIGHT-1M` minus what this
  host reserved in that minute up to the request is weight used by someone else on this IP
  (another program, a skewed window): it is added as a "foreign" reservation, so the limiter
  never plans past what the server says is left. While a budget has had no answer for a whole
  window, one request goes first and the others wait for its header.
- Blocks. A 429's Retry-After, a Binance 418 ban or Bybit's 403 blocks the whole exchange (any
  target: the LLM's 429 too) for every process until it ends; a block longer than
  `max_wait_seconds` fails the call at once.

All windows and waits are multiplied by the time scale (`ResilienceSettings.time_scale`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from vectorflow import interrupt
from vectorflow.errors import Banned
from vectorflow.resilience.failures import Response
from vectorflow.resilience.store import StateStore
from vectorflow.resilience.target import Budget
from vectorflow.settings.resilience import ResilienceSettings
from vectorflow.timeframes import ms_to_iso

log = logging.getLogger(__name__)

WINDOW_MARGIN = 0.01  # the client's window is this much longer than the exchange's
PROBE_POLL = 0.005  # seconds between looks while the first request of a window is out
CLEANUP_EVERY = 500  # reservations between deletions of expired events


@dataclass(frozen=True)
class Ticket:
    """A reservation: the weights charged to each budget at time `t`."""

    target: str
    t: float
    charges: tuple[tuple[Budget, int], ...]


@dataclass(frozen=True)
class BudgetUse:
    """One budget as `vectorflow status` shows it."""

    budget: str
    limit: int
    window_seconds: float
    used: int
    server_used: int | None
    server_age_seconds: float | None


class RateLimiter:
    """Budgets of every target, reserved through one SQLite file shared by all processes."""

    def __init__(
        self, store: StateStore, settings: ResilienceSettings, probe_seconds: float
    ) -> None:
        self.store, self.scale = store, settings.time_scale
        self.max_wait = settings.max_wait_seconds * self.scale
        self.probe_seconds = probe_seconds
        self.settings = settings
        self._reservations = 0

    # ---------------------------------------------------------------- budgets

    def limit(self, budget: Budget) -> int:
        """The budget's limit per window (settings may override the exchange's)."""
        return self.settings.budget_limit(budget.name, budget.limit)

    def window(self, budget: Budget) -> float:
        """The exchange's window in host seconds (time-scaled)."""
        return budget.window_seconds * self.scale

    def _span(self, budget: Budget) -> float:
        return self.window(budget) * (1 + WINDOW_MARGIN)

    # ---------------------------------------------------------------- reserving

    def acquire(
        self,
        target: str,
        charges: Sequence[tuple[Budget, int]],
        *,
        max_wait: float | None = None,
        probe_seconds: float | None = None,
    ) -> Ticket:
        """Wait until every budget has room and `target` is not blocked; reserve.

        A wait longer than `max_wait` (host seconds; default: the settings') raises Banned.
        """
        limit = self.max_wait if max_wait is None else max_wait
        lease = self.probe_seconds if probe_seconds is None else probe_seconds
        while True:
            wait, why, ticket = self._try(target, charges, lease)
            if ticket is not None:
                return ticket
            until = self.store.now() + wait
            if wait > limit:
                raise Banned(
                    f"{target}: no request allowed until {ms_to_iso(int(until * 1000))} ({why});"
                    f" longer than the {limit:g} s a call may wait"
                )
            log.debug("%s: waiting %.3f s (%s)", target, wait, why)
            kind = why.removeprefix("blocked: ").split(":")[0] if why != "budget" else "budget full"
            what = f"{target}: {kind} until {interrupt.until_text(until)}"  # "binance: banned ..."
            interrupt.sleep(max(wait, 0.0005), what)

    def _try(
        self, target: str, charges: Sequence[tuple[Budget, int]], lease: float
    ) -> tuple[float, str, Ticket | None]:
        with self.store.write() as con:
            now = self.store.now()
            block = con.execute(
                "SELECT until, reason FROM rate_blocks WHERE exchange = ?", (target,)
            ).fetchone()
            if block and block[0] > now:
                return block[0] - now, f"blocked: {block[1]}", None
            waits = [w for w in (self._room(con, b, weight, now) for b, weight in charges) if w]
            if waits:
                return max(waits), "budget", None
            for budget, weight in charges:
                con.execute(
                    "INSERT INTO rate_events VALUES (?, ?, ?, 'own')", (budget.name, now, weight)
                )
                if budget.usage_header and self._stale(con, budget, now):
                    con.execute(
                        "INSERT INTO rate_feedback (budget, probe_until) VALUES (?, ?) "
                        "ON CONFLICT (budget) DO UPDATE SET probe_until = excluded.probe_until",
                        (budget.name, now + lease),
                    )
            self._reservations += 1
            if self._reservations % CLEANUP_EVERY == 0:
                con.execute("DELETE FROM rate_events WHERE t < ?", (now - 4000 * self.scale,))
        return 0.0, "", Ticket(target, now, tuple(charges))

    def _room(self, con, budget: Budget, weight: int, now: float) -> float:
        """0 when `weight` fits in `budget` now, else how long until it does."""
        span = self._span(budget)
        events = con.execute(
            "SELECT t, weight FROM rate_events WHERE budget = ? AND t > ? ORDER BY t",
            (budget.name, now - span),
        ).fetchall()
        used = sum(w for _, w in events)
        excess = used + weight - self.limit(budget)
        if excess > 0 and used > 0:
            freed = 0
            for t, w in events:
                freed += w
                if freed >= excess:
                    return t + span - now
        if budget.usage_header:
            row = con.execute(
                "SELECT t, probe_until FROM rate_feedback WHERE budget = ?", (budget.name,)
            ).fetchone()
            if self._stale(con, budget, now) and row and (row[1] or 0) > now:
                return min(row[1] - now, PROBE_POLL)  # the window's first request is out
        return 0.0

    def _stale(self, con, budget: Budget, now: float) -> bool:
        """True when the server has not reported this budget's use for a whole window."""
        row = con.execute("SELECT t FROM rate_feedback WHERE budget = ?", (budget.name,)).fetchone()
        return row is None or row[0] is None or row[0] < now - self.window(budget)

    # ---------------------------------------------------------------- feedback

    def record(self, ticket: Ticket, responses: Sequence[Response]) -> None:
        """Take in the server's word after a request: usage headers; end the window's probe."""
        answered = set()
        for response in responses:
            path = urlsplit(response.url).path
            for budget, _ in ticket.charges:
                if budget.usage_header and path.startswith(budget.paths):
                    self._feedback(ticket, budget, response.header(budget.usage_header))
                    answered.add(budget.name)
        for budget, _ in ticket.charges:
            if budget.usage_header and budget.name not in answered:
                self._feedback(ticket, budget, None)  # no answer: let another request go first

    def _feedback(self, ticket: Ticket, budget: Budget, header: str | None) -> None:
        with self.store.write() as con:
            now = self.store.now()
            if header is None or not header.strip().isdigit():
                con.execute(
                    "INSERT INTO rate_feedback (budget, probe_until) VALUES (?, 0) "
                    "ON CONFLICT (budget) DO UPDATE SET probe_until = 0",
                    (budget.name,),
                )
                return
            used = int(header)
            server_window = self.window(budget)
            window = math.floor(ticket.t / server_window)
            ours = con.execute(
                "SELECT coalesce(sum(weight), 0) FROM rate_events WHERE budget = ? "
                "AND source = 'own' AND t >= ? AND t <= ?",
                (budget.name, window * server_window, ticket.t),
            ).fetchone()[0]
            row = con.execute(
                "SELECT window, foreign_weight FROM rate_feedback WHERE budget = ?",
                (budget.name,),
            ).fetchone()
            seen = row[1] if row and row[0] == window and row[1] else 0
            foreign = used - ours
            if foreign > seen:
                con.execute(
                    "INSERT INTO rate_events VALUES (?, ?, ?, 'foreign')",
                    (budget.name, now, foreign - seen),
                )
                log.info("%s: the server counts %d weight not sent from here", budget.name, foreign)
                seen = foreign
            con.execute(
                "INSERT INTO rate_feedback VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (budget) DO UPDATE"
                " SET t = excluded.t, used = excluded.used, window = excluded.window,"
                " foreign_weight = excluded.foreign_weight, probe_until = 0",
                (budget.name, now, used, window, seen),
            )

    def block(self, target: str, seconds: float, reason: str) -> float:
        """Block every request to `target` from every process for `seconds`; the end time."""
        with self.store.write() as con:
            now = self.store.now()
            until = now + seconds
            con.execute(  # the column is named for the first targets there were: exchanges
                "INSERT INTO rate_blocks VALUES (?, ?, ?, ?) ON CONFLICT (exchange) DO UPDATE SET"
                " since = excluded.since, until = max(until, excluded.until),"
                " reason = excluded.reason",
                (target, now, until, reason),
            )
        log.warning("%s: no requests for %.1f s: %s", target, seconds, reason)
        return until

    # ---------------------------------------------------------------- reporting

    def usage(self, budgets: Sequence[Budget]) -> list[BudgetUse]:
        """Each budget's use over the last window, and the server's last word on it."""
        now = self.store.now()
        out = []
        for budget in budgets:
            used = self.store.read(
                "SELECT coalesce(sum(weight), 0) FROM rate_events WHERE budget = ? AND t > ?",
                (budget.name, now - self._span(budget)),
            )[0][0]
            fb = self.store.read(
                "SELECT t, used FROM rate_feedback WHERE budget = ?", (budget.name,)
            )
            t, server = fb[0] if fb else (None, None)
            age = None if t is None else round(now - t, 3)
            out.append(
                BudgetUse(budget.name, self.limit(budget), self.window(budget), used, server, age)
            )
        return out

    def blocks(self) -> list[tuple[str, float, float, str]]:
        """(exchange, since, until, reason) of every block still running."""
        return self.store.read(
            "SELECT exchange, since, until, reason FROM rate_blocks WHERE until > ? ORDER BY 1",
            (self.store.now(),),
        )
