"""The exchanges' failure table: what each exchange failure calls for.

Each failure is reduced to its facts (HTTP status and headers, the exchange's code and message,
the exception class) and the first row of `RULES` that matches decides its `Verdict` (the table
form is `vectorflow.resilience.failures`), which `vectorflow.resilience.guard` applies. The table
as users read it: docs/internals.md#the-error-table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

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
from vectorflow.resilience.failures import OURS, Facts, FailureTable, Response, Rule, Verdict

ERRORS: dict[Verdict, type[VectorflowError]] = {
    Verdict.TRANSIENT: ExchangeUnavailable,
    Verdict.RATE_LIMITED: RateLimited,
    Verdict.BANNED: Banned,
    Verdict.MALFORMED: MalformedResponse,
    Verdict.UNKNOWN_SYMBOL: UnknownSymbol,
    Verdict.PERMANENT: PermanentError,
}


_5XX = frozenset(range(500, 600))
_4XX = frozenset(range(400, 500))

#: First match wins. The exchange's word on our rate comes first, then its codes, then HTTP
#: statuses, then exception classes (which are the least reliable of the three).
RULES: tuple[Rule, ...] = (
    *OURS,  # errors VectorFlow raised itself (validation, market lookup) keep their meaning
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

TABLE = FailureTable(RULES, DEFAULT, ERRORS)

_CODE = re.compile(r'"(?:code|retCode)"\s*:\s*"?(-?\d+)')


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
    return Facts.of(exchange, exc, response, code=code, message=message)


def classify_failure(
    exchange: str, exc: BaseException, what: str, response: Response | None = None
) -> tuple[Verdict, VectorflowError, Facts]:
    """The verdict on a failure and the error to raise for it, its message saying what failed."""
    return TABLE.judge(facts_of(exchange, exc, response), what)


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


__all__ = ["ERRORS", "RULES", "Response", "Verdict", "classify_failure", "facts_of"]
