"""One table mapping exchange failures onto transient or permanent errors, applied in one place.

ccxt's classes alone mislead (Bybit 10016 and Binance -1008 off binance.com arrive as a plain
ExchangeError, Binance 429 and 418 both as DDoSProtection), so the exchange's own code and the
HTTP status are read first, then the class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import ccxt

from vectorflow.errors import (
    ExchangeUnavailable,
    MalformedResponse,
    PermanentError,
    TransientError,
    UnknownSymbol,
    VectorflowError,
)

#: exchange error codes that are worth retrying
TRANSIENT_CODES: dict[str, frozenset[int]] = {
    "binance": frozenset({-1003, -1007, -1008, -1001}),
    "bybit": frozenset({10000, 10006, 10016, 10002}),
}
#: exchange error codes meaning "no such symbol"
UNKNOWN_SYMBOL_CODES: dict[str, frozenset[int]] = {
    "binance": frozenset({-1121}),
    "bybit": frozenset({10001}),  # only when the message names the symbol, see _is_unknown_symbol
}
TRANSIENT_HTTP = frozenset({408, 418, 425, 429, 500, 502, 503, 504})

_TRANSIENT_CLASSES = (
    ccxt.NetworkError,
)  # RequestTimeout, ExchangeNotAvailable, DDoSProtection, ...
_CODE = re.compile(r'"(?:code|retCode)"\s*:\s*(-?\d+)')
_STATUS = re.compile(r"\b(\d{3})\b")


def _exchange_code(message: str) -> int | None:
    match = _CODE.search(message)
    return int(match.group(1)) if match else None


def _is_unknown_symbol(exchange: str, code: int | None, message: str) -> bool:
    if code not in UNKNOWN_SYMBOL_CODES.get(exchange, ()):
        return False
    return exchange != "bybit" or "symbol" in message.lower()


def classify(exchange: str, exc: BaseException, what: str) -> VectorflowError:
    """Map a ccxt or transport exception to a VectorFlow error whose message says what failed."""
    if isinstance(exc, VectorflowError):
        return exc
    message = str(exc)
    code = _exchange_code(message)
    detail = f"{exchange} {what}: {type(exc).__name__}: {message[:300]}"
    if _is_unknown_symbol(exchange, code, message) or isinstance(exc, ccxt.BadSymbol):
        return UnknownSymbol(detail)
    if code is not None and code in TRANSIENT_CODES.get(exchange, ()):
        return ExchangeUnavailable(detail)
    if isinstance(exc, _TRANSIENT_CLASSES) or isinstance(exc, ccxt.OnMaintenance):
        return ExchangeUnavailable(detail)
    if isinstance(exc, (json.JSONDecodeError, ccxt.BadResponse)):
        return MalformedResponse(detail)
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return ExchangeUnavailable(detail)
    if isinstance(exc, ccxt.ExchangeError):
        status = _STATUS.search(message[:40])
        if status and int(status.group(1)) in TRANSIENT_HTTP:
            return ExchangeUnavailable(detail)
        return PermanentError(detail)
    return PermanentError(detail)


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
