"""The Grok circuit breaker (`playbook`, `grok`) and retry policy, from the resilience layer.

The breaker is the resilience layer's, persisted in `<data dir>/state.db`, so every process on
the host sees it open. While it is open no request is sent and the rule-based writer answers.
"""

from __future__ import annotations

from pydantic import SecretStr

from vectorflow.errors import CircuitOpen
from vectorflow.playbooks.client import GrokClient
from vectorflow.resilience.breaker import Breakers
from vectorflow.resilience.retry import RetryPolicy
from vectorflow.resilience.store import StateStore

KIND, TARGET = "playbook", "grok"


class GrokBreaker:
    """The (`playbook`, `grok`) breaker: admit before a request, report how it went."""

    def __init__(self, breakers: Breakers) -> None:
        self.breakers = breakers

    @classmethod
    def from_settings(cls, settings) -> GrokBreaker:
        """The breaker in the data dir's state.db, with the resilience settings."""
        r, p = settings.resilience, settings.playbooks
        lease = p.attempts * (p.connect_timeout_seconds + p.read_timeout_seconds) + 1
        store = StateStore(settings.state_path)
        return cls(
            Breakers(store, r.breaker_failures, r.breaker_cooldown_seconds * r.time_scale, lease)
        )

    def admit(self) -> None:
        """Let a request through, or raise CircuitOpen without touching the network."""
        self.breakers.admit(KIND, TARGET)

    def success(self) -> None:
        """The API answered (a permanent refusal is an answer too)."""
        self.breakers.success(KIND, TARGET)

    def failure(self, error: BaseException) -> None:
        """A transient failure after the retries."""
        self.breakers.failure(KIND, TARGET, str(error)[:300])

    def is_open(self) -> bool:
        """True while the breaker refuses calls (no state change)."""
        states = [s for s in self.breakers.states() if (s.kind, s.target) == (KIND, TARGET)]
        return bool(states) and states[0].state != "closed"


def grok_client(settings, api_key: SecretStr | str) -> GrokClient:
    """A client for the configured endpoint, retrying with the resilience backoff."""
    r, p = settings.resilience, settings.playbooks
    policy = RetryPolicy(p.attempts, r.retry_base_seconds, r.retry_max_seconds, r.time_scale)
    return GrokClient(p, api_key, policy)


__all__ = ["CircuitOpen", "GrokBreaker", "grok_client"]
