"""Secrets: the keys VectorFlow knows, where each one comes from, and their redaction from logs.

    name                 Prefect Secret block            used for
    XAI_API_KEY          vectorflow-xai-api-key          Grok playbooks (else rule-based)
    BINANCE_API_KEY      vectorflow-binance-api-key      optional: market data needs no key
    BINANCE_API_SECRET   vectorflow-binance-api-secret
    BYBIT_API_KEY        vectorflow-bybit-api-key
    BYBIT_API_SECRET     vectorflow-bybit-api-secret

A secret is read from its environment variable, else from its Prefect Secret block. This library
imports no Prefect, so the block is read by a function the caller passes in
(`tasks/secrets.py: resolve`). A secret is never a flow parameter, a job variable, a setting or
a file in the data dir. VectorFlow only calls public market-data endpoints, so exchange keys are
never sent; they are named here so that they are stored, listed and redacted one way.

Redaction: `install_redaction()` (the CLI and every flow process call it first) makes every log
record the process creates pass through `SecretRedactor`, which replaces each configured secret
value with `***` in the message and the traceback: the value in any letter case, and its base64
(standard or URL-safe, also inside a longer encoded text). Model answers pass through it before
they are stored. It works at record creation, so every handler
sees the redacted record: the console, files, and Prefect's API log handler (logs in the UI).
The environment's secrets are added when it is installed, a block's value when it is read.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from pydantic import SecretStr

from vectorflow.errors import InvalidInput

log = logging.getLogger(__name__)

MASK = "***"
#: shorter values are not redacted: masking "ab" would garble every log line and hide nothing
MIN_REDACTED_LENGTH = 4
#: shorter values are not looked for in base64: a few encoded characters match too much
MIN_ENCODED_LENGTH = 12
_URL_SAFE = str.maketrans("+/", "-_")


def giveaway_forms(value: str) -> set[str]:
    """The texts that give `value` away: itself and, for a long one, the base64 of it (as
    given, upper- or lower-cased) at each byte alignment within a longer encoded text (the
    characters that hold only its bits), in the standard and the URL-safe alphabet. Matched in
    any letter case."""
    forms = {value}
    if len(value) < MIN_ENCODED_LENGTH:
        return forms
    for data in {value.encode(), value.upper().encode(), value.lower().encode()}:
        for shift in range(3):  # bytes before it in the encoded text, modulo 3
            encoded = base64.b64encode(b"\0" * shift + data).decode()
            core = encoded[-(-8 * shift // 6) : 8 * (shift + len(data)) // 6]
            forms |= {core, core.translate(_URL_SAFE)}
    return forms


class SecretName(NamedTuple):
    """One known secret: its environment variable, its Prefect Secret block, what it is for."""

    env: str
    block: str
    purpose: str


SECRETS: dict[str, SecretName] = {
    s.env: s
    for s in (
        SecretName("XAI_API_KEY", "vectorflow-xai-api-key", "Grok playbooks"),
        SecretName("BINANCE_API_KEY", "vectorflow-binance-api-key", "Binance (optional)"),
        SecretName("BINANCE_API_SECRET", "vectorflow-binance-api-secret", "Binance (optional)"),
        SecretName("BYBIT_API_KEY", "vectorflow-bybit-api-key", "Bybit (optional)"),
        SecretName("BYBIT_API_SECRET", "vectorflow-bybit-api-secret", "Bybit (optional)"),
    )
}


def secret_name(name: str) -> SecretName:
    """The known secret called `name` (any case); InvalidInput listing the names otherwise."""
    known = SECRETS.get(name.strip().upper())
    if known is None:
        raise InvalidInput(f"unknown secret {name!r}; expected one of {', '.join(SECRETS)}")
    return known


#: Where Secret blocks are read from in this process (`use_block_reader`): a flow's process
#: reads Prefect Secret blocks (set by the `tasks` package); a command run in process, the
#: environment only.
_block_reader: Callable[[str], str | None] | None = None


def use_block_reader(
    read_block: Callable[[str], str | None] | None,
) -> Callable[[str], str | None] | None:
    """Read secrets missing from the environment with `read_block(block name)` from now on;
    the reader used before (to put back)."""
    global _block_reader
    previous, _block_reader = _block_reader, read_block
    return previous


def resolve_secret(name: str, *, env: Mapping[str, str] | None = None) -> SecretStr | None:
    """Secret `name` from the environment, else its block (`use_block_reader`); None when unset.

    A block that cannot be read (an unreachable Prefect API) is logged by exception type only
    and counts as unset: the key is optional (playbooks are then rule-based). A value found is
    added to the log redaction of this process.
    """
    spec = secret_name(name)
    value = (os.environ if env is None else env).get(spec.env, "").strip()
    if not value and _block_reader is not None:
        try:
            value = (_block_reader(spec.block) or "").strip()
        except Exception as exc:  # noqa: BLE001 - optional: the run goes on without it
            log.warning("Secret block %s unreadable (%s); no key", spec.block, type(exc).__name__)
    if not value:
        return None
    REDACTOR.add(value)
    return SecretStr(value)


class SecretRedactor(logging.Filter):
    """A logging filter replacing every known secret value in a record with `***`."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        """Redact `value` from now on."""
        value = value.strip()
        if len(value) < MIN_REDACTED_LENGTH or value in self._values:
            return
        with self._lock:
            self._compile((*self._values, value))

    def discard(self, value: str) -> None:
        """Stop redacting `value`."""
        with self._lock:
            self._compile(tuple(v for v in self._values if v != value.strip()))

    def _compile(self, values: tuple[str, ...]) -> None:
        forms = {form for value in values for form in giveaway_forms(value)}
        # longest first, so a secret containing another is masked whole
        ordered = sorted(forms, key=len, reverse=True)
        self._values = values
        self._pattern = (
            re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE) if ordered else None
        )

    def redact(self, text: str) -> str:
        """`text` with every known secret value (any case, or base64-encoded) replaced by `***`."""
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place (message, traceback, stack); never drops it."""
        if not self._values:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's to report, not ours
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # formatted now, as handlers would later: they reuse exc_text when it is set
            text = logging.Formatter().formatException(record.exc_info)
            if self.redact(text) != text:
                record.exc_text = text
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


#: The redactor of this process.
REDACTOR = SecretRedactor()


#: Secrets of the systems VectorFlow reaches through their own clients: redacted too
STORAGE_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")  # the S3 lake
URLS_WITH_PASSWORDS = ("VECTORFLOW_SHARED_STATE_URL",)  # postgresql://user:password@host/db


def install_redaction(env: Mapping[str, str] | None = None) -> SecretRedactor:
    """Redact the environment's secrets, and any read later, from every log record; idempotent."""
    source = os.environ if env is None else env
    for name in [*(spec.env for spec in SECRETS.values()), *STORAGE_SECRETS]:
        if source.get(name, "").strip():
            REDACTOR.add(source[name])
    for name in URLS_WITH_PASSWORDS:
        password = urlsplit(source.get(name, "")).password
        if password:
            REDACTOR.add(password)
    current = logging.getLogRecordFactory()
    if not getattr(current, "redactor", None):

        def redacting_factory(*args, **kwargs) -> logging.LogRecord:
            record = current(*args, **kwargs)
            REDACTOR.filter(record)
            return record

        redacting_factory.redactor = REDACTOR  # type: ignore[attr-defined]
        logging.setLogRecordFactory(redacting_factory)
    return REDACTOR
