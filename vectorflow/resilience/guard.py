"""The guarded call: breaker, then limiter, then the request, retried per page on transient errors.

`Guard.call` runs every request to a remote API (each exchange through
`vectorflow.exchanges.client.call_endpoint`, the LLM through `vectorflow.playbooks.client`). A
call is retried where it failed (one page, never the pages already landed), through the limiter
(so Retry-After and bans hold for every process), only when the target's failure table says the
failure is transient; a malformed answer is retried once; anything else fails at once with a
message naming the request (`what`) and the API's own words.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

from vectorflow import interrupt
from vectorflow.errors import Banned, CircuitOpen, VectorflowError
from vectorflow.resilience.breaker import Breakers
from vectorflow.resilience.failures import Facts, Response, Verdict
from vectorflow.resilience.limiter import RateLimiter
from vectorflow.resilience.retry import RetryPolicy
from vectorflow.resilience.shared import SharedStore
from vectorflow.resilience.store import StateStore
from vectorflow.resilience.target import Budget, Target

log = logging.getLogger(__name__)
T = TypeVar("T")

#: verdicts worth another attempt (MALFORMED: once)
RETRIED = {Verdict.TRANSIENT, Verdict.RATE_LIMITED, Verdict.BANNED, Verdict.MALFORMED}


class Guard:
    """Breakers, limiter and retry policy of one data dir (its `state.db`)."""

    def __init__(self, settings) -> None:
        r = settings.resilience
        self.scale = r.time_scale
        self.store = StateStore(settings.state_path)
        lease = 2 * settings.request_timeout_seconds + 1  # a lost probe is taken over after this
        self.limiter = RateLimiter(self.store, r, probe_seconds=lease)
        shared = SharedStore(r.shared_state_url) if r.shared_state_url else self.store
        self.breakers = Breakers(
            shared, r.breaker_failures, r.breaker_cooldown_seconds * self.scale, lease
        )
        self.policy = RetryPolicy(
            r.retry_attempts, r.retry_base_seconds, r.retry_max_seconds, self.scale
        )

    def call(
        self,
        target: Target,
        invoke: Callable[[list[Response]], T],
        *,
        kind: str,
        what: str,
        charges: Sequence[tuple[Budget, int]] = (),
        check: Callable[[T], T] | None = None,
    ) -> T:
        """`check(invoke(responses))` through breaker, limiter and retries.

        `invoke` appends the HTTP responses it saw to `responses` (the table reads the last);
        `kind` names the breaker with the target; failures come out classified.
        """
        policy = target.policy or self.policy
        attempt, malformed, last = 0, 0, None
        while True:
            interrupt.check(f"{target.name} {what}")  # a stopped run sends nothing new
            probe = self._admit(kind, target, what, last, attempt)
            ticket = self._acquire(target, charges, what)
            attempt += 1
            responses: list[Response] = []
            try:
                result = invoke(responses)
                result = check(result) if check is not None else result
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                self.limiter.record(ticket, responses)
                verdict, error, facts = target.classify(
                    exc, what, responses[-1] if responses else None
                )
                malformed += verdict == Verdict.MALFORMED
                self._tell(target, kind, verdict, error, facts, probe, policy)
                if verdict not in RETRIED or attempt >= policy.attempts or malformed >= 2:
                    if _final(error, attempt, malformed) is exc:
                        raise
                    raise error from exc
                delay = policy.delay(attempt) if verdict == Verdict.TRANSIENT else 0.0
                log.warning("%s (try %d of %d, next in %.2f s)", error, attempt, policy.attempts,
                            delay)  # fmt: skip
                last = error
                until = interrupt.until_text(time.time() + delay)
                interrupt.sleep(delay, f"{target.name}: backing off until {until} to retry {what}")
                continue
            self.limiter.record(ticket, responses)
            self.breakers.success(kind, target.name)
            return result

    def _admit(self, kind: str, target: Target, what: str, last, attempt: int) -> bool:
        """Pass the breaker (True: this try is the half-open probe), else raise.

        Refused before any try: CircuitOpen (the unit is skipped). Refused after tries that
        opened it: the last real error, saying so.
        """
        try:
            return self.breakers.admit(kind, target.name, target.probe_lease)
        except CircuitOpen as exc:
            if last is None:
                exc.add_note(f"{target.name} {what}")
                raise
            last.add_note(f"the {kind}/{target.name} breaker opened after {attempt} tries")
            last.tries = attempt
            raise last from exc

    def _acquire(self, target: Target, charges, what: str):
        """The limiter's ticket; Banned (nothing sent) when the wait is longer than allowed."""
        max_wait = None if target.max_wait_seconds is None else target.max_wait_seconds * self.scale
        try:
            return self.limiter.acquire(
                target.name, charges, max_wait=max_wait, probe_seconds=target.probe_lease
            )
        except Banned as exc:
            exc.add_note(f"{target.name} {what}")
            raise

    def _tell(
        self,
        target: Target,
        kind: str,
        verdict: Verdict,
        error: VectorflowError,
        facts: Facts,
        probe: bool,
        policy: RetryPolicy,
    ) -> None:
        """Tell the breaker and the limiter what a failure says about the target."""
        if verdict == Verdict.TRANSIENT:
            self.breakers.failure(kind, target.name, str(error)[:200])
            return
        if verdict in (Verdict.PERMANENT, Verdict.UNKNOWN_SYMBOL) or probe:
            self.breakers.success(kind, target.name)  # an answer: the target is up
        if verdict == Verdict.RATE_LIMITED:
            wait = facts.retry_after
            seconds = wait * self.scale if wait is not None else policy.delay(1)
            self.limiter.block(target.name, seconds, f"rate limited: {str(error)[:200]}")
        elif verdict == Verdict.BANNED:
            seconds = max(facts.retry_after or 0.0, target.min_ban_seconds) * self.scale
            self.limiter.block(target.name, seconds, f"banned: {str(error)[:200]}")


def _final(error: VectorflowError, attempt: int, malformed: int) -> VectorflowError:
    """The error to raise, saying how many tries were made."""
    if malformed >= 2:
        error.add_note(f"the response failed validation twice (tries: {attempt})")
    elif attempt > 1:
        error.add_note(f"gave up after {attempt} tries")
    error.tries = attempt  # type: ignore[attr-defined]
    return error


_guards: OrderedDict[tuple, Guard] = OrderedDict()
_guards_lock = threading.Lock()
KEEP_GUARDS = 16  # a process rarely uses more than one data dir; tests use many


def guard_for(settings) -> Guard:
    """The process's Guard for these settings (one per data dir and resilience settings)."""
    r = settings.resilience
    key = (str(settings.state_path), repr(r), r.shared_state_url, settings.request_timeout_seconds)
    with _guards_lock:
        guard = _guards.get(key)
        if guard is None:
            guard = _guards[key] = Guard(settings)
            while len(_guards) > KEEP_GUARDS:  # the oldest goes; its connections with it
                _guards.popitem(last=False)
        _guards.move_to_end(key)
        return guard


def forget_guards(state_path) -> None:
    """Drop this process's guards of `state_path` (their connections go with them)."""
    with _guards_lock:
        for key in [k for k in _guards if k[0] == str(state_path)]:
            del _guards[key]
