"""Failure tables: a failure reduced to its facts, the first matching row deciding its verdict.

Each remote API the pipeline calls brings its own table in this form (the exchanges'
`vectorflow.exchanges.classify`, the LLM's `vectorflow.playbooks.guard`); the guard
(`vectorflow.resilience.guard`) acts on the verdict: retry with backoff, wait for Retry-After,
stop for a ban, retry a malformed answer once, or fail at once.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field
from enum import StrEnum

from vectorflow.errors import (
    Banned,
    MalformedResponse,
    PermanentError,
    RateLimited,
    TransientError,
    UnknownSymbol,
    VectorflowError,
)


class Verdict(StrEnum):
    """What a failure calls for."""

    TRANSIENT = "transient"  # retry with backoff; counts towards opening the breaker
    RATE_LIMITED = "rate_limited"  # retry once Retry-After has passed (the limiter blocks)
    BANNED = "banned"  # no request to the target until the ban ends
    MALFORMED = "malformed"  # retry once; a second malformed answer is final
    UNKNOWN_SYMBOL = "unknown_symbol"  # final
    PERMANENT = "permanent"  # final: bad parameters, authentication, unknown path, ...


@dataclass(frozen=True)
class Response:
    """One HTTP response as the client saw it (status, headers, the start of the body)."""

    url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def header(self, name: str) -> str | None:
        """A header's value, case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now; None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass(frozen=True)
class Facts:
    """What is known about one failure."""

    target: str  # the API called, e.g. "binance", "grok"
    exc: BaseException
    status: int | None  # the HTTP status of a failed response (>= 400)
    code: int | None  # the API's own error code, when its body had one
    message: str  # the API's own message when it sent one, else the exception's text
    retry_after: float | None  # seconds, from the Retry-After header

    @classmethod
    def of(
        cls,
        target: str,
        exc: BaseException,
        response: Response | None,
        *,
        code: int | None = None,
        message: str | None = None,
    ) -> Facts:
        """The facts of `exc` given the last response; `code` and `message` if the body said."""
        status = response.status if response is not None and response.status >= 400 else None
        wait = retry_after(response.header("Retry-After")) if response is not None else None
        return cls(target, exc, status, code, str(exc) if message is None else message, wait)


@dataclass(frozen=True)
class Rule:
    """One row of a table: every given condition must hold."""

    verdict: Verdict
    why: str
    target: str | None = None
    status: frozenset[int] | None = None
    codes: frozenset[int] | None = None
    classes: tuple[type[BaseException], ...] = ()
    text: str | None = None  # a lower-case word the API's message must contain
    any_code: bool = False  # matches any API error code

    def matches(self, f: Facts) -> bool:
        """True when this row describes `f`."""
        return (
            (self.target is None or self.target == f.target)
            and (self.status is None or f.status in self.status)
            and (self.codes is None or f.code in self.codes)
            and (not self.classes or isinstance(f.exc, self.classes))
            and (self.text is None or self.text in f.message.lower())
            and (not self.any_code or f.code is not None)
        )


#: The first rows of every table: errors VectorFlow raised itself keep their meaning.
OURS: tuple[Rule, ...] = (
    Rule(Verdict.BANNED, "ours: Banned", classes=(Banned,)),
    Rule(Verdict.RATE_LIMITED, "ours: RateLimited", classes=(RateLimited,)),
    Rule(Verdict.MALFORMED, "ours: a response failed validation", classes=(MalformedResponse,)),
    Rule(Verdict.UNKNOWN_SYMBOL, "ours: UnknownSymbol", classes=(UnknownSymbol,)),
    Rule(Verdict.TRANSIENT, "ours: TransientError", classes=(TransientError,)),
    Rule(Verdict.PERMANENT, "ours: PermanentError", classes=(PermanentError,)),
)


@dataclass(frozen=True)
class FailureTable:
    """Rows (first match wins), the row for anything else, and the error raised per verdict."""

    rules: tuple[Rule, ...]
    default: Rule
    errors: dict[Verdict, type[VectorflowError]]

    def rule_for(self, f: Facts) -> Rule:
        """The first row matching `f`."""
        return next((rule for rule in self.rules if rule.matches(f)), self.default)

    def judge(self, f: Facts, what: str) -> tuple[Verdict, VectorflowError, Facts]:
        """The verdict on a failure and the error to raise for it, saying what failed.

        An error VectorFlow raised itself is kept as it is.
        """
        verdict = self.rule_for(f).verdict
        if isinstance(f.exc, VectorflowError):
            return verdict, f.exc, f
        said = f.message.strip()[:300] or type(f.exc).__name__
        details = [f"HTTP {f.status}" if f.status else None, f"code {f.code}" if f.code else None]
        where = ", ".join(d for d in details if d)
        message = f"{f.target} {what}: {said}" + (f" ({where})" if where else "")
        cls = self.errors[verdict]
        if issubclass(cls, (RateLimited, Banned)):
            return verdict, cls(message, retry_after=f.retry_after), f
        return verdict, cls(message), f
