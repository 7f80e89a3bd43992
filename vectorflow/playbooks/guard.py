"""The LLM's failure table, in the form of the exchanges' (`vectorflow.exchanges.classify`).

Every request of the Grok client goes through the resilience guard, as the exchanges' do: the
(`playbook`, `grok`) circuit breaker in `<data dir>/state.db` (every process on the host sees it
open; while it is open no request is sent and the rule-based writer answers), the limiter
(a 429's Retry-After blocks the API for every process) and the retry policy. 429 waits for
Retry-After unless that is longer than `[playbooks] retry_after_cap_seconds`; 408, 409, 425 and
the 5xx of the API and its gateways are retried with backoff; any other 4xx or 5xx is final.
"""

from __future__ import annotations

import requests

from vectorflow.errors import LlmRejected, LlmUnavailable, RateLimited, VectorflowError
from vectorflow.resilience.failures import OURS, FailureTable, Rule, Verdict
from vectorflow.resilience.retry import RetryPolicy
from vectorflow.resilience.target import Classifier, Target
from vectorflow.settings.playbooks import PlaybookSettings

KIND, TARGET = "playbook", "grok"  # the breaker of the LLM calls

TRANSIENT_STATUS = frozenset({408, 409, 425, 500, 502, 503, 504, 520, 522, 524})

#: First match wins.
RULES: tuple[Rule, ...] = (
    *OURS,  # a body that is no JSON object: LlmUnavailable, raised by the client
    Rule(Verdict.RATE_LIMITED, "429: wait for Retry-After", status=frozenset({429})),
    Rule(Verdict.TRANSIENT, "408, 409, 425, the API's or gateway's 5xx", status=TRANSIENT_STATUS),
    Rule(
        Verdict.PERMANENT,
        "any other 4xx or 5xx: key, model, request shape",
        status=frozenset(range(400, 600)),
    ),
    Rule(
        Verdict.TRANSIENT,
        "network: refused, reset, timed out, DNS",
        classes=(requests.RequestException, ConnectionError, TimeoutError, OSError),
    ),
)
DEFAULT = Rule(Verdict.PERMANENT, "anything else")
#: the verdicts the rows give to failures that are not VectorFlow's own errors
ERRORS: dict[Verdict, type[VectorflowError]] = {
    Verdict.TRANSIENT: LlmUnavailable,
    Verdict.RATE_LIMITED: RateLimited,
    Verdict.PERMANENT: LlmRejected,
}
TABLE = FailureTable(RULES, DEFAULT, ERRORS)


def llm_target(config: PlaybookSettings, classify: Classifier, backoff: RetryPolicy) -> Target:
    """The LLM endpoint as the guard sees it: `config.attempts` tries with `backoff`'s waits."""
    policy = RetryPolicy(
        config.attempts, backoff.base_seconds, backoff.max_seconds, backoff.time_scale
    )
    return Target(
        TARGET,
        classify,
        probe_lease=config.connect_timeout_seconds + config.read_timeout_seconds + 1,
        max_wait_seconds=config.retry_after_cap_seconds,
        policy=policy,
    )
