"""The per-run token budget, shared by the concurrent playbook requests of one run.

A request reserves its estimated cost before it is sent and settles the billed tokens after; a
reservation that would pass the budget is refused, so the run stops sending requests once the
budget is spent (the series left are `skipped_budget`). The budget lives in the run's process:
the playbook flow runs its series on threads of one process.
"""

from __future__ import annotations

import math
import threading

#: tokens reserved for an answer on top of the prompt (a playbook is a few hundred tokens)
ANSWER_ESTIMATE = 1024
CHARS_PER_TOKEN = 3  # conservative: JSON numbers tokenize densely


def estimate_tokens(*texts: str) -> int:
    """A pessimistic token estimate of one request with these prompt texts."""
    return math.ceil(sum(len(t) for t in texts) / CHARS_PER_TOKEN) + ANSWER_ESTIMATE


class TokenBudget:
    """Thread-safe token accounting of one run."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self.reserved = 0
        self._lock = threading.Lock()

    def reserve(self, estimate: int) -> bool:
        """Reserve `estimate` tokens; False (nothing reserved) when that would pass the limit."""
        with self._lock:
            if self.spent + self.reserved + estimate > self.limit:
                return False
            self.reserved += estimate
            return True

    def settle(self, estimate: int, actual: int) -> None:
        """Release a reservation and count what the request really cost."""
        with self._lock:
            self.reserved -= estimate
            self.spent += actual

    def __repr__(self) -> str:
        return f"TokenBudget(limit={self.limit}, spent={self.spent}, reserved={self.reserved})"


_RUNS: dict[str, TokenBudget] = {}
_RUNS_LOCK = threading.Lock()


def run_budget(run_id: str, limit: int) -> TokenBudget:
    """The budget of run `run_id` in this process (created with `limit` on first use)."""
    with _RUNS_LOCK:
        budget = _RUNS.get(run_id)
        if budget is None:
            budget = _RUNS[run_id] = TokenBudget(limit)
        return budget


def end_run_budget(run_id: str) -> TokenBudget | None:
    """Forget the budget of a finished run; returns it for the run's summary."""
    with _RUNS_LOCK:
        return _RUNS.pop(run_id, None)
