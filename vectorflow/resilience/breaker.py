"""Circuit breakers per (task kind, target), persisted in `state.db` for every process of the
host, or, with `VECTORFLOW_SHARED_STATE_URL`, in PostgreSQL for every host
(`vectorflow.resilience.shared`).

    closed --N consecutive transient failures--> open --cool-down--> half_open
    half_open --the one probe succeeds--> closed;  half_open --the probe fails--> open

While open (and while a half-open probe is out) calls fail fast with `CircuitOpen`, without
touching the network. Only transient failures count (network, timeouts, 5xx, exchange busy): a
permanent error is an answer, so it closes like a success; rate limits and bans are the
limiter's business and count neither way. Every transition is logged and recorded with its
time and reason (table `breaker_transitions`). A probe whose process died is taken over once
its lease (a few request timeouts) has run out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vectorflow.errors import CircuitOpen
from vectorflow.resilience.store import StateStore
from vectorflow.timeframes import ms_to_iso

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerState:
    """One breaker as `vectorflow status` shows it."""

    kind: str
    target: str
    state: str
    failures: int
    opened_at: float | None
    retry_at: float | None  # when an open breaker lets its probe through
    reason: str | None


def _iso(t: float | None) -> str:
    return "-" if t is None else ms_to_iso(int(t * 1000))


class Breakers:
    """Every breaker, in the host's SQLite file or the hosts' shared PostgreSQL database."""

    def __init__(
        self, store: StateStore, failures: int, cooldown_seconds: float, probe_lease: float
    ) -> None:
        self.store, self.threshold = store, failures
        self.cooldown, self.probe_lease = cooldown_seconds, probe_lease

    def admit(self, kind: str, target: str, lease: float | None = None) -> bool:
        """Let a call through (True if it is the half-open probe), else raise CircuitOpen.

        A probe not reported on within `lease` seconds (default: the breakers') is taken over.
        """
        rows = self.store.read(
            "SELECT state, opened_at, probe_until, reason FROM breakers WHERE kind=? AND target=?",
            (kind, target),
        )
        if not rows or rows[0][0] == CLOSED:
            return False
        with self.store.write() as con:
            now = self.store.now()
            row = con.execute(
                "SELECT state, opened_at, probe_until, reason FROM breakers "
                "WHERE kind = ? AND target = ?",
                (kind, target),
            ).fetchone()
            state, opened_at, probe_until, reason = row
            if state == CLOSED:
                return False
            if state == OPEN and now < opened_at + self.cooldown:
                raise CircuitOpen(
                    f"circuit open for {kind} on {target} until {_iso(opened_at + self.cooldown)}"
                    f" ({reason}); not attempted"
                )
            if state == HALF_OPEN and (probe_until or 0) > now:
                raise CircuitOpen(
                    f"circuit half-open for {kind} on {target}: another call is probing"
                    f" ({reason}); not attempted"
                )
            why = "cool-down over" if state == OPEN else "previous probe lost"
            self._move(con, kind, target, state, HALF_OPEN, why, now)
            con.execute(
                "UPDATE breakers SET probe_until = ? WHERE kind = ? AND target = ?",
                (now + (self.probe_lease if lease is None else lease), kind, target),
            )
            return True

    def success(self, kind: str, target: str) -> None:
        """The target answered: close the breaker and forget earlier failures."""
        rows = self.store.read(
            "SELECT state, failures FROM breakers WHERE kind = ? AND target = ?", (kind, target)
        )
        if not rows or rows[0] == (CLOSED, 0):
            return
        with self.store.write() as con:
            row = con.execute(
                "SELECT state FROM breakers WHERE kind = ? AND target = ?", (kind, target)
            ).fetchone()
            now = self.store.now()
            if row[0] != CLOSED:
                self._move(con, kind, target, row[0], CLOSED, "call succeeded", now)
            con.execute(
                "UPDATE breakers SET state = ?, failures = 0, updated_at = ?, opened_at = NULL, "
                "probe_until = NULL, reason = NULL WHERE kind = ? AND target = ?",
                (CLOSED, now, kind, target),
            )

    def failure(self, kind: str, target: str, reason: str) -> bool:
        """A transient failure; True when it leaves the breaker open."""
        with self.store.write() as con:
            now = self.store.now()
            row = con.execute(
                "SELECT state, failures FROM breakers WHERE kind = ? AND target = ?",
                (kind, target),
            ).fetchone()
            state, failures = row if row else (CLOSED, 0)
            if row is None:
                con.execute(
                    "INSERT INTO breakers (kind, target, state, failures, updated_at) "
                    "VALUES (?, ?, ?, 0, ?)",
                    (kind, target, CLOSED, now),
                )
            failures += 1
            con.execute(
                "UPDATE breakers SET failures = ?, updated_at = ? WHERE kind = ? AND target = ?",
                (failures, now, kind, target),
            )
            if state == HALF_OPEN:
                self._open(con, kind, target, state, f"probe failed: {reason}", now)
            elif state == CLOSED and failures >= self.threshold:
                why = f"{failures} consecutive transient failures, last: {reason}"
                self._open(con, kind, target, state, why, now)
            elif state == CLOSED:
                return False
            return True

    def _open(self, con, kind: str, target: str, state: str, reason: str, now: float) -> None:
        self._move(con, kind, target, state, OPEN, reason, now)
        con.execute(
            "UPDATE breakers SET opened_at = ?, probe_until = NULL, reason = ? "
            "WHERE kind = ? AND target = ?",
            (now, reason[:500], kind, target),
        )

    def _move(self, con, kind, target, old: str, new: str, reason: str, now: float) -> None:
        con.execute(
            "UPDATE breakers SET state = ?, updated_at = ? WHERE kind = ? AND target = ?",
            (new, now, kind, target),
        )
        con.execute(
            "INSERT INTO breaker_transitions VALUES (?, ?, ?, ?, ?, ?)",
            (now, kind, target, old, new, reason[:500]),
        )
        log.warning("circuit breaker %s/%s: %s -> %s (%s)", kind, target, old, new, reason)

    def states(self) -> list[BreakerState]:
        """Every breaker the host has recorded, by kind and target."""
        rows = self.store.read(
            "SELECT kind, target, state, failures, opened_at, reason FROM breakers ORDER BY 1, 2"
        )
        return [
            BreakerState(k, t, s, f, o, None if s == CLOSED or o is None else o + self.cooldown, r)
            for k, t, s, f, o, r in rows
        ]

    def transitions(self, limit: int = 20) -> list[tuple]:
        """The latest transitions, newest first: (time, kind, target, from, to, reason)."""
        return self.store.read(
            "SELECT t, kind, target, from_state, to_state, reason FROM breaker_transitions "
            "ORDER BY t DESC LIMIT ?",
            (limit,),
        )
