"""Checks the settings sections share: a name among known ones, an http(s) URL."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlparse

from pydantic import AfterValidator


def check_name(name: str, known: tuple[str, ...], kind: str) -> str:
    """`name` when it is one of `known`; a ValueError naming it and the known ones otherwise."""
    if name not in known:
        raise ValueError(f"unknown {kind} {name!r}; expected one of {', '.join(known)}")
    return name


def known(names: tuple[str, ...], kind: str) -> AfterValidator:
    """A validator of a list of names, or of a table's keys: each one of `names`."""

    def check(value: Iterable[str]):
        for name in value:
            check_name(name, names, kind)
        return value

    return AfterValidator(check)


def check_http_url(value: str, example: str) -> str:
    """`value` stripped when it is an http(s) URL with a host; ValueError otherwise.

    The message does not echo the value: a URL may carry a token or a password.
    """
    parsed = urlparse(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"not an http(s) URL such as {example}")
    return value.strip()
