"""The guarded call: breaker, then limiter, then the request, retried per page on transient errors.

`Guard.call` is what `vectorflow.exchanges.client.call_endpoint` runs for every exchange request.
A call is retried where it failed (one page, never the pages already landed), through the limiter
(so Retry-After and bans hold for every process), only when the error table says the failure is
transient; a malformed answer is retried once; anything else fails at once with a message naming
the request (`what`: exchange, market, symbol, timeframe) and the exchange's own words.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from vectorflow.errors import Banned, CircuitOpen, VectorflowError
from vectorflow.exchanges.classify import Verdict, classify_failure
from vectorflow.exchanges.specs import Budget, ExchangeSpec, exchange_spec
from vectorflow.resilience.breaker import Breakers
from vectorflow.resilience.limiter import RateLimiter
from vectorflow.resilience.retry import RetryPolicy
from vectorflow.resilience.shared import SharedStore
from vectorflow.resilience.store import StateStore

log = logging.getLogger(__name__)

#: verdicts worth another attempt (MALFORMED: once)
RETRIED = {Verdict.TRANSIENT, Verdict.RATE_LIMITED, Verdict.BANNED, Verdict.MALFORMED}


class Guard:
    """Breakers, limiter and retry policy of one data dir (its `state.db`)."""

    def __init__(self, settings, sleep: Callable[[float], None] = time.sleep) -> None:
        r = settings.resilience
        self.scale, self.sleep = r.time_scale, sleep
        self.store = StateStore(settings.state_path)
        lease = 2 * settings.request_timeout_seconds + 1  # a lost probe is taken over after this
        self.limiter = RateLimiter(self.store, r, probe_seconds=lease, sleep=sleep)
        shared = SharedStore(r.shared_state_url) if r.shared_state_url else self.store
        self.breakers = Breakers(
            shared, r.breaker_failures, r.breaker_cooldown_seconds * self.scale, lease
        )
        self.policy = RetryPolicy(
            r.retry_attempts, r.retry_base_seconds, r.retry_max_seconds, self.scale
        )

    def call(
        self,
        client: Any,
        method: str,
        invoke: Callable[[], object],
        *,
        what: str,
        params: dict | None = None,
        check: Callable[[object], object] | None = None,
    ) -> object:
        """`check(invoke())` through breaker, limiter and retries; failures come out classified."""
        spec = exchange_spec(client.id)
        endpoint = spec.endpoint(method)
        charges = _charges(spec, endpoint.charges, params or {})
        attempt, malformed, last = 0, 0, None
        while True:
            probe = self._admit(endpoint.kind, spec.id, what, last, attempt)
            try:
                ticket = self.limiter.acquire(spec.id, charges)
            except Banned as exc:  # blocked for longer than max_wait_seconds: nothing sent
                exc.add_note(f"{spec.id} {what}")
                raise
            attempt += 1
            client.vf_responses = responses = []
            try:
                result = invoke()
                result = check(result) if check is not None else result
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
                self.limiter.record(ticket, responses)
                verdict, error, facts = classify_failure(
                    spec.id, exc, f"{method} {what}", responses[-1] if responses else None
                )
                malformed += verdict == Verdict.MALFORMED
                self._tell(spec, endpoint.kind, verdict, error, facts, probe)
                if verdict not in RETRIED or attempt >= self.policy.attempts or malformed >= 2:
                    if _final(error, attempt, malformed) is exc:
                        raise
                    raise error from exc
                delay = self.policy.delay(attempt) if verdict == Verdict.TRANSIENT else 0.0
                log.warning(
                    "%s (try %d of %d, next in %.2f s)", error, attempt, self.policy.attempts, delay
                )
                last = error
                self.sleep(delay)
                continue
            finally:
                client.vf_responses = None
            self.limiter.record(ticket, responses)
            self.breakers.success(endpoint.kind, spec.id)
            return result

    def _admit(self, kind: str, exchange: str, what: str, last, attempt: int) -> bool:
        """Pass the breaker (True: this try is the half-open probe), else raise.

        Refused before any try: CircuitOpen (the unit is skipped). Refused after tries that
        opened it: the last real error, saying so.
        """
        try:
            return self.breakers.admit(kind, exchange)
        except CircuitOpen as exc:
            if last is None:
                exc.add_note(f"{exchange} {what}")
                raise
            last.add_note(f"the {kind}/{exchange} breaker opened after {attempt} tries")
            last.tries = attempt
            raise last from exc

    def _tell(
        self,
        spec: ExchangeSpec,
        kind: str,
        verdict: Verdict,
        error: VectorflowError,
        facts,
        probe: bool,
    ) -> None:
        """Tell the breaker and the limiter what a failure says about the target."""
        exchange = spec.id
        if verdict == Verdict.TRANSIENT:
            self.breakers.failure(kind, exchange, str(error)[:200])
            return
        if verdict in (Verdict.PERMANENT, Verdict.UNKNOWN_SYMBOL) or probe:
            self.breakers.success(kind, exchange)  # an answer: the target is up
        if verdict == Verdict.RATE_LIMITED:
            wait = facts.retry_after
            seconds = wait * self.scale if wait is not None else self.policy.delay(1)
            self.limiter.block(exchange, seconds, f"rate limited: {str(error)[:200]}")
        elif verdict == Verdict.BANNED:
            seconds = max(facts.retry_after or 0.0, spec.min_ban_seconds) * self.scale
            self.limiter.block(exchange, seconds, f"banned: {str(error)[:200]}")


def _charges(spec: ExchangeSpec, charges, params: dict) -> list[tuple[Budget, int]]:
    budgets = {b.name: b for b in spec.budgets}
    return [(budgets[c.budget], c.weight_for(params)) for c in charges if c.budget in budgets]


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
