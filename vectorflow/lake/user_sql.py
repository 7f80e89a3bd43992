"""`vectorflow sql`: a user's query over the catalog's views, unable to write anything.

Two locks, both DuckDB's own:

- only statements that read run: SELECT and what parses as one (`FROM t`, DESCRIBE, SHOW,
  SUMMARIZE, VALUES). COPY, EXPORT, ATTACH, INSTALL and LOAD, SET, PRAGMA, CALL, CREATE,
  INSERT... are refused before anything runs; so is EXPLAIN, as EXPLAIN ANALYZE runs its
  statement;
- the session reads files under the lake only (`allowed_directories` with external access
  off, its configuration then locked), never installs or loads an extension, and opens the
  catalog read-only.

Views come from the catalog file when it is this data dir's (rebuilt if it was copied or
moved, or damaged); when it cannot be rewritten (a read-only copy of a data dir), the same
views are built in an in-memory database over this data dir's own lake.
"""

from __future__ import annotations

import logging

import duckdb

from vectorflow.errors import InvalidInput
from vectorflow.lake.catalog import connect, connect_in_memory, execute_retrying, refresh_catalog
from vectorflow.lake.storage import LakePath
from vectorflow.settings import Settings

log = logging.getLogger(__name__)

#: The statement types a user's query may hold.
READING = {duckdb.StatementType.SELECT}


def check_reads_only(sql: str) -> None:
    """InvalidInput (one line, naming it) unless `sql` is one or more statements that only read."""
    try:
        statements = duckdb.connect().extract_statements(sql)
    except duckdb.Error as exc:
        raise InvalidInput(f"SQL {sql!r}: {str(exc).splitlines()[0]}") from None
    if not statements:
        raise InvalidInput(f"no SQL statement in {sql!r}: give a query, e.g. 'FROM candles'")
    for statement in statements:
        if statement.type not in READING:
            text = " ".join(statement.query.split())
            raise InvalidInput(
                f"vectorflow sql only reads: {text[:80]!r} is refused "
                f"({statement.type.name} statement); nothing was run or written"
            )


def _lock_down(con: duckdb.DuckDBPyConnection, lake: LakePath) -> None:
    """From now on the session reads files under the lake only and cannot change that."""
    root = str(lake).rstrip("/") + "/"
    con.execute("SET allowed_directories = [" + "'" + root.replace("'", "''") + "']")
    for setting in (
        "autoinstall_known_extensions = false",
        "autoload_known_extensions = false",
        "allow_community_extensions = false",
        "enable_external_access = false",
        "lock_configuration = true",
    ):
        con.execute(f"SET {setting}")


def open_session(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A locked-down connection holding the catalog's views over this data dir's lake."""
    storage = settings.storage
    con = None
    try:
        if refresh_catalog(settings):
            con = connect(settings, read_only=True)
    except (OSError, duckdb.IOException) as exc:  # a read-only lake, a writer holding the file
        log.info("catalog of %s not used (%s)", settings.data_dir, str(exc).splitlines()[0])
    if con is None:
        log.info("reading %s through in-memory views", storage.root)
        con = connect_in_memory(storage)
    _lock_down(con, storage.root)
    return con


def run_query(settings: Settings, sql: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a query that only reads (InvalidInput otherwise)."""
    check_reads_only(sql)
    con = open_session(settings)
    try:
        cursor = execute_retrying(con, sql)  # a compaction may replace files meanwhile
        return [d[0] for d in cursor.description or []], cursor.fetchall()
    finally:
        con.close()
