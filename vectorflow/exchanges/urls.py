"""Base-URL overrides: point every endpoint of an exchange at a proxy, testnet or the simulator."""

from __future__ import annotations

from urllib.parse import urlparse

from vectorflow.errors import InvalidInput
from vectorflow.settings.exchanges import check_base_url, check_ws_url


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
