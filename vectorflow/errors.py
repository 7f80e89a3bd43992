"""Errors named for what the caller must do with them.

    VectorflowError
    ├── InvalidInput          the request itself is wrong (option, config, range):
    │                         exit 2, no request made
    ├── PermanentError        fail this unit now, retrying cannot help;
    │   │                     the message names the bad value
    │   ├── UnknownSymbol     the exchange does not list the symbol (in that market)
    │   ├── MalformedResponse a response failed validation (never stored); the request is
    │   │   │                 retried once, a second failure is final
    │   │   └── PlaybookRejected  an LLM answer that is no valid playbook (one repair request)
    │   └── LlmRejected       the LLM API refused for good (key, model, request shape)
    ├── TransientError        worth retrying after a wait:
    │   │                     network, timeouts, 5xx, 429, exchange busy
    │   ├── ExchangeUnavailable
    │   ├── LlmUnavailable    the LLM API could not be reached or failed on its side
    │   ├── RateLimited       429 / over the budget: retry after Retry-After, which the rate
    │   │                     limiter enforces for every process on the host
    │   └── Banned            418 (Binance IP ban) or Bybit 403: no request to the exchange
    │                         until the ban ends
    ├── CircuitOpen           not attempted: the target's circuit breaker is open; the unit is
    │                         reported as skipped, neither retried nor failed
    ├── BudgetSpent           not attempted: the run's LLM token budget is spent
    ├── CorruptState          `<data dir>/state.db` cannot be read: exit 4, the line names the
    │                         file and `vectorflow doctor --repair`
    └── Interrupted           SIGINT or SIGTERM stopped a wait (`vectorflow.interrupt`): the
                              command ends (exit 130 / 143), the next run resumes

The mapping from HTTP statuses, API codes and exceptions to these lives in one table per API
(`vectorflow.exchanges.classify`, `vectorflow.playbooks.guard`), applied in one place
(`vectorflow.resilience.guard`).
"""

from __future__ import annotations


class VectorflowError(Exception):
    """Base of every error VectorFlow raises on purpose."""


class InvalidInput(VectorflowError, ValueError):
    """The request is invalid as a whole: nothing was fetched or written."""


class PermanentError(VectorflowError):
    """Retrying cannot help; fail the unit with a message naming the bad value."""


class UnknownSymbol(PermanentError):
    """The exchange does not list this symbol in this market."""


class MalformedResponse(PermanentError):
    """A response failed validation; its rows are never stored."""


class PlaybookRejected(MalformedResponse):
    """An LLM answer that is no valid playbook; the message says which rule it broke."""


class LlmRejected(PermanentError):
    """The LLM API refused the request for good (key, model, request shape)."""


class TransientError(VectorflowError):
    """A failure worth retrying after a wait."""


class ExchangeUnavailable(TransientError):
    """The exchange could not be reached or answered with a server-side error."""


class LlmUnavailable(TransientError):
    """The LLM API could not be reached, timed out or failed on its side."""


class RateLimited(TransientError):
    """The exchange said "too many requests"; `retry_after`: its wait in seconds, if given."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Banned(TransientError):
    """The exchange banned this IP (Binance 418, Bybit 403); nothing may be sent until it ends."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class CircuitOpen(VectorflowError):
    """A call refused without touching the network: the (task kind, target) breaker is open."""


class BudgetSpent(VectorflowError):
    """The run's LLM token budget refused a request: nothing was sent."""


class Interrupted(VectorflowError):
    """A SIGINT or SIGTERM stopped the run while it waited; nothing is retried."""


class CorruptState(VectorflowError):
    """The host's state file (`state.db`) is damaged; `vectorflow doctor --repair` replaces it."""

    def __init__(self, path, why: str) -> None:
        why = " ".join(why.split())[:300]  # SQLite's integrity report spans lines
        super().__init__(
            f"{path} is corrupt ({why}); run `vectorflow doctor --repair` to move it into "
            f"{path.parent / 'quarantine'} and start with empty rate-limit and breaker state"
        )
        self.path, self.why = path, why
