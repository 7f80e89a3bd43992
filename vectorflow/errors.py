"""Errors named for what the caller must do with them.

    VectorflowError
    ├── InvalidInput          the request itself is wrong (option, config, range):
    │                         exit 2, no request made
    ├── PermanentError        fail this unit now, retrying cannot help;
    │                         the message names the bad value
    │   ├── UnknownSymbol     the exchange does not list the symbol (in that market)
    │   └── MalformedResponse a response failed validation (never stored)
    └── TransientError        worth retrying after a wait:
                              network, timeouts, 5xx, 429, exchange busy
        └── ExchangeUnavailable

The mapping from ccxt exceptions, HTTP statuses and exchange codes lives in
`vectorflow.exchanges.classify`, applied in one place.
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


class TransientError(VectorflowError):
    """A failure worth retrying after a wait."""


class ExchangeUnavailable(TransientError):
    """The exchange could not be reached or answered with a server-side error."""
