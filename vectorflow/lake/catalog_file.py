"""The catalog file's failures: why DuckDB could not open it, and a damaged one moved aside.

The catalog holds views only, so a damaged one (not a DuckDB file, truncated, a failing
checksum) is rebuilt from the lake; the old file is moved to `<data dir>/quarantine/` with a
note, never deleted.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePath

import duckdb

from vectorflow.quarantine import set_aside

log = logging.getLogger(__name__)

LOCKED, UNWRITABLE, DAMAGED = "locked", "unwritable", "damaged"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (DuckDB's run over several)."""
    return (str(exc).splitlines() or [""])[0]


#: What DuckDB raises for a file it cannot read as a database (a failing checksum is a bare Error)
_UNREADABLE = (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException)


def failure(exc: duckdb.Error) -> str | None:
    """Why the catalog file could not be used: LOCKED (retry), UNWRITABLE or DAMAGED; None for
    an error that is not about the file (a view that does not bind)."""
    text = str(exc)
    if "Could not set lock" in text or "Conflicting lock" in text:
        return LOCKED  # another process has it open read-write
    if "Read-only file system" in text or "Permission denied" in text:
        return UNWRITABLE
    if isinstance(exc, _UNREADABLE) or type(exc) is duckdb.Error:
        return DAMAGED  # not a DuckDB file, truncated, a checksum that fails
    return None


def quarantine(catalog: Path, data_dir: Path, reason: str) -> Path | None:
    """Move a damaged catalog (and its WAL) to `<data dir>/quarantine/` with a note; None when
    it cannot be moved (a read-only data dir) or is gone."""
    if not catalog.is_file() or not os.access(catalog.parent, os.W_OK):
        return None
    note = (
        f"could not be opened ({reason}); a new catalog was built from the lake "
        "(it holds views only)"
    )
    target = set_aside(data_dir, catalog, PurePath(catalog.name), note, move=True,
                       companions=(".wal",))  # a WAL is never replayed into the new catalog
    log.warning("catalog %s is damaged (%s): moved to %s and rebuilt", catalog, reason, target)
    return target
