"""The `[exchanges.<name>]` sections: where each exchange is reached, and the URL checks.

    [exchanges.binance]
    url = "http://127.0.0.1:8900"   # replaces scheme and host of every Binance endpoint
    ws_url = "ws://127.0.0.1:8901"  # the same for its WebSocket streams (capture-orderbook)
    [exchanges.binance.urls]        # or whole URLs per ccxt API group (testnets)
    fapiPublic = "https://testnet.binancefuture.com/fapi/v1"

Environment: `VECTORFLOW_BINANCE_URL`, `VECTORFLOW_BINANCE_WS_URL` (and the Bybit ones), or
`VECTORFLOW_EXCHANGES__BINANCE__URL`. `vectorflow.exchanges.urls` applies them to ccxt.
"""

from __future__ import annotations

from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vectorflow.errors import InvalidInput


def _root(base: str, schemes: tuple[str, str], example: str, name: str | None) -> str:
    parsed = urlparse(base.strip())
    if parsed.scheme not in schemes or not parsed.netloc:
        kind = "an http(s)" if schemes[0] == "http" else "a ws(s)"
        said = f"{base!r} is not {kind} base URL such as {example}"
        raise InvalidInput(f"{name}: {said}" if name else said)
    return f"{parsed.scheme}://{parsed.netloc}"


def check_base_url(base: str, *, name: str | None = None) -> str:
    """`base` as scheme://host[:port]; InvalidInput naming it when it is no http(s) URL."""
    return _root(base, ("http", "https"), "http://127.0.0.1:8900", name)


def check_ws_url(base: str, *, name: str | None = None) -> str:
    """`base` as ws[s]://host[:port]; InvalidInput naming it when it is no WebSocket URL."""
    return _root(base, ("ws", "wss"), "ws://127.0.0.1:8901", name)


class ExchangeEndpoints(BaseModel):
    """Where one exchange is reached: a base URL replacing every host, and per-group URLs."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str | None = Field(
        default=None,
        description="Base URL replacing the scheme and host of every REST endpoint of this "
        "exchange, paths kept (a proxy, a testnet, the simulator).",
    )
    ws_url: str | None = Field(
        default=None,
        description="The same for its WebSocket streams (capture-orderbook).",
    )
    urls: dict[str, str] = Field(
        default_factory=dict,
        description="Whole URLs per ccxt API group, applied after `url` (testnets with a host "
        'per group), e.g. fapiPublic = "https://testnet.binancefuture.com/fapi/v1".',
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    @field_validator("ws_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        return None if value is None else check_ws_url(value)
