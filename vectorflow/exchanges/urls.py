"""Base-URL overrides: point every endpoint of an exchange at a proxy, testnet or the simulator."""

from __future__ import annotations

from urllib.parse import urlparse

from vectorflow.errors import InvalidInput


def check_base_url(base: str, *, name: str) -> str:
    """`base` as scheme://host[:port]; InvalidInput naming it when it is no http(s) URL."""
    parsed = urlparse(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(
            f"{name}: {base!r} is not an http(s) base URL such as http://127.0.0.1:8900"
        )
    return f"{parsed.scheme}://{parsed.netloc}"


def override_api_urls(
    api_urls: dict, base: str | None, groups: dict[str, str] | None = None
) -> dict:
    """Replace scheme and host of every ccxt `urls['api']` entry with `base`, keeping each path.

    `groups` then replaces whole entries by ccxt API group name (e.g. `fapiPublic`), for testnets
    that use different hosts per group. Non-string entries (nested websocket tables) are kept.
    """
    out = dict(api_urls)
    if base:
        root = check_base_url(base, name="base URL")
        for key, value in api_urls.items():
            if isinstance(value, str):
                path = urlparse(value.replace("{hostname}", "placeholder")).path
                out[key] = root + path
    for key, value in (groups or {}).items():
        if key not in api_urls:
            known = ", ".join(sorted(k for k, v in api_urls.items() if isinstance(v, str)))
            raise InvalidInput(f"unknown API group {key!r} in URL overrides; known: {known}")
        out[key] = value.rstrip("/")
    return out


def check_ws_url(base: str, *, name: str) -> str:
    """`base` as ws[s]://host[:port]; InvalidInput naming it when it is no WebSocket URL."""
    parsed = urlparse(base)
    if parsed.scheme not in ("ws", "wss") or not parsed.netloc:
        raise InvalidInput(f"{name}: {base!r} is not a ws(s) base URL such as ws://127.0.0.1:8901")
    return f"{parsed.scheme}://{parsed.netloc}"


def override_ws_urls(ws_urls: object, base: str | None) -> object:
    """ccxt's `urls['api']['ws']` (nested tables) with every host replaced by `base`, paths kept."""
    if not base:
        return ws_urls
    root = check_ws_url(base, name="WebSocket base URL")
    if isinstance(ws_urls, dict):
        return {key: override_ws_urls(value, root) for key, value in ws_urls.items()}
    if isinstance(ws_urls, str):
        return root + urlparse(ws_urls.replace("{hostname}", "placeholder")).path
    return ws_urls
