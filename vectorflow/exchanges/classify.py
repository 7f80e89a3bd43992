"""One table mapping exchange failures onto what to do about them, applied in one place.

Each failure is reduced to its facts (HTTP status and headers, the exchange's code and message,
the exception class) and the first row of `RULES` that matches decides its `Verdict`, which
`vectorflow.resilience.guard` applies. The table as users read it:
docs/internals.md#the-error-table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import StrEnum

import ccxt

from vectorflow.errors import (
    Banned,
    ExchangeUnavailable,
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
    BANNED = "banned"  # no request to the exchange until the ban ends
    MALFORMED = "malformed"  # retry once; a second malformed answer is final
    UNKNOWN_SYMBOL = "unknown_symbol"  # final
    PERMANENT = "permanent"  # final: bad parameters, authentication, unknown path, ...


ERRORS: dict[Verdict, type[VectorflowError]] = {
    Verdict.TRANSIENT: ExchangeUnavailable,
    Verdict.RATE_LIMITED: RateLimited,
    Verdict.BANNED: Banned,
    Verdict.MALFORMED: MalformedResponse,
    Verdict.UNKNOWN_SYMBOL: UnknownSymbol,
    Verdict.PERMANENT: PermanentError,
}


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


@dataclass(frozen=True)
class Facts:
    """What is known about one failure."""

    exchange: str
    exc: BaseException
    status: int | None
    code: int | None
    message: str  # the exchange's own message when it sent one, else the exception's text
    retry_after: float | None  # seconds, from the Retry-After header


@dataclass(frozen=True)
class Rule:
    """One row of the table: every given condition must hold."""

    verdict: Verdict
    why: str
    exchange: str | None = None
    status: frozenset[int] | None = None
    codes: frozenset[int] | None = None
    classes: tuple[type[BaseException], ...] = ()
    text: str | None = None  # a lower-case word the exchange's message must contain
    any_code: bool = False  # matches any exchange error code

    def matches(self, f: Facts) -> bool:
        """True when this row describes `f`."""
        return (
            (self.exchange is None or self.exchange == f.exchange)
            and (self.status is None or f.status in self.status)
            and (self.codes is None or f.code in self.codes)
            and (not self.classes or isinstance(f.exc, self.classes))
            and (self.text is None or self.text in f.message.lower())
            and (not self.any_code or f.code is not None)
        )


_5XX = frozenset(range(500, 600))
_4XX = frozenset(range(400, 500))

#: First match wins. The exchange's word on our rate comes first, then its codes, then HTTP
#: statuses, then exception classes (which are the least reliable of the three).
RULES: tuple[Rule, ...] = (
    # errors VectorFlow raised itself (validation, market lookup, the guard) keep their meaning
    Rule(Verdict.BANNED, "ours: Banned", classes=(Banned,)),
    Rule(Verdict.RATE_LIMITED, "ours: RateLimited", classes=(RateLimited,)),
    Rule(Verdict.MALFORMED, "ours: a response failed validation", classes=(MalformedResponse,)),
    Rule(Verdict.UNKNOWN_SYMBOL, "ours: UnknownSymbol", classes=(UnknownSymbol,)),
    Rule(Verdict.TRANSIENT, "ours: TransientError", classes=(TransientError,)),
    Rule(Verdict.PERMANENT, "ours: PermanentError", classes=(PermanentError,)),
    Rule(Verdict.BANNED, "Binance IP ban for going on after 429s", "binance", frozenset({418})),
    Rule(Verdict.BANNED, "Bybit 403: over 600 req / 5 s", "bybit", frozenset({403})),
    Rule(Verdict.RATE_LIMITED, "too many requests: wait for Retry-After", status=frozenset({429})),
    Rule(Verdict.RATE_LIMITED, "Binance -1003 too many", "binance", codes=frozenset({-1003})),
    Rule(Verdict.TRANSIENT, "Bybit 10006 too many visits", "bybit", codes=frozenset({10006})),
    Rule(
        Verdict.TRANSIENT,
        "Binance -1000 unknown, -1001 disconnected, -1006 unexpected bus response, "
        "-1007 backend timeout, -1008 server busy",
        "binance",
        codes=frozenset({-1000, -1001, -1006, -1007, -1008}),
    ),
    Rule(
        Verdict.TRANSIENT,
        "Bybit 10000 server timeout, 10016 server error",
        "bybit",
        codes=frozenset({10000, 10016}),
    ),
    Rule(Verdict.UNKNOWN_SYMBOL, "Binance -1121 bad symbol", "binance", codes=frozenset({-1121})),
    Rule(
        Verdict.UNKNOWN_SYMBOL,
        "Bybit 10001 naming the symbol ('Not supported symbols')",
        "bybit",
        codes=frozenset({10001}),
        text="symbol",
    ),
    Rule(Verdict.UNKNOWN_SYMBOL, "ccxt BadSymbol", classes=(ccxt.BadSymbol,)),
    Rule(
        Verdict.MALFORMED,
        "unparseable body (ccxt BadResponse, JSON errors)",
        classes=(ccxt.BadResponse, json.JSONDecodeError),
    ),
    Rule(Verdict.TRANSIENT, "exchange maintenance", classes=(ccxt.OnMaintenance,)),
    Rule(Verdict.TRANSIENT, "5xx, 408, 425: server failed or timed out", status=_5XX | {408, 425}),
    Rule(Verdict.PERMANENT, "other 4xx: parameters, auth, WAF, unknown path", status=_4XX),
    Rule(Verdict.PERMANENT, "any other exchange error code (e.g. Bybit 10001)", any_code=True),
    Rule(
        Verdict.TRANSIENT,
        "network: refused, reset, timed out, DNS",
        classes=(ccxt.NetworkError, ConnectionError, TimeoutError, OSError),
    ),
)
DEFAULT = Rule(Verdict.PERMANENT, "anything else (ccxt ExchangeError, BadRequest, auth, ...)")

_CODE = re.compile(r'"(?:code|retCode)"\s*:\s*"?(-?\d+)')


def _retry_after(response: Response | None) -> float | None:
    text = response.header("Retry-After") if response else None
    if not text:
        return None
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        from time import time

        return max(parsedate_to_datetime(text).timestamp() - time(), 0.0)
    except (TypeError, ValueError):
        return None


def _own_words(response: Response | None, exc: BaseException) -> tuple[int | None, str]:
    """The exchange's error code and message from the body, else from the exception text."""
    body = response.body if response else ""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        code = parsed.get("code", parsed.get("retCode"))
        message = parsed.get("msg", parsed.get("retMsg"))
        if isinstance(code, (int, str)) and str(code).lstrip("-").isdigit() and int(code) != 0:
            return int(code), str(message or "")
    match = _CODE.search(str(exc))
    return (int(match.group(1)) if match else None), str(exc)


def facts_of(exchange: str, exc: BaseException, response: Response | None = None) -> Facts:
    """Reduce a failure to the facts the table reads."""
    code, message = _own_words(response, exc)
    status = response.status if response is not None and response.status >= 400 else None
    return Facts(exchange, exc, status, code, message, _retry_after(response))


def rule_for(f: Facts) -> Rule:
    """The first row of `RULES` matching `f`."""
    return next((rule for rule in RULES if rule.matches(f)), DEFAULT)


def classify_failure(
    exchange: str, exc: BaseException, what: str, response: Response | None = None
) -> tuple[Verdict, VectorflowError, Facts]:
    """The verdict on a failure and the error to raise for it, its message saying what failed."""
    f = facts_of(exchange, exc, response)
    verdict = rule_for(f).verdict
    if isinstance(exc, VectorflowError):
        return verdict, exc, f
    said = f.message.strip()[:300] or type(exc).__name__
    details = [f"HTTP {f.status}" if f.status else None, f"code {f.code}" if f.code else None]
    where = ", ".join(d for d in details if d)
    message = f"{exchange} {what}: {said}" + (f" ({where})" if where else "")
    cls = ERRORS[verdict]
    if cls in (RateLimited, Banned):
        return verdict, cls(message, retry_after=f.retry_after), f
    return verdict, cls(message), f


def classify(exchange: str, exc: BaseException, what: str) -> VectorflowError:
    """Map a ccxt or transport exception to a VectorFlow error whose message says what failed."""
    return classify_failure(exchange, exc, what)[1]


def is_transient(exc: BaseException) -> bool:
    """True when retrying `exc` after a wait may succeed."""
    return isinstance(exc, TransientError)


@contextmanager
def translate_errors(exchange: str, what: str) -> Iterator[None]:
    """Re-raise anything from ccxt or the network in the block as a classified VectorFlow error."""
    try:
        yield
    except VectorflowError:
        raise
    except Exception as exc:  # noqa: BLE001 - everything is classified, nothing swallowed
        raise classify(exchange, exc, what) from exc
