"""Breakers shared by every host: a PostgreSQL database (`VECTORFLOW_SHARED_STATE_URL`).

With several hosts running the pipeline (`vectorflow up --workers` on each, one Prefect
server), an exchange or API that is down is down for all of them: one set of breakers, so a
breaker opened by one host's failures makes every host fail fast, and one probe (on any host)
closes it. The breakers' own SQL (`vectorflow.resilience.breaker`) runs unchanged here as on
SQLite; a decision is one transaction that first locks the breakers table, so decisions are
serialised across hosts as `BEGIN IMMEDIATE` serialises them across the processes of a host.

Rate limits stay per host in `state.db` (`vectorflow.resilience.store`): Binance and Bybit
count request weight per IP address, so each host has its own budget.

The same database serialises the writers of a partition of a lake on object storage across
hosts (`advisory_lock`, used by `vectorflow.lake.storage.objects.ObjectStorage.lock`).
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a shared URL is used (~0.15 s a command otherwise)
    import sqlalchemy as sa

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS breakers ("
    " kind TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, failures INTEGER NOT NULL,"
    " opened_at DOUBLE PRECISION, probe_until DOUBLE PRECISION,"
    " updated_at DOUBLE PRECISION NOT NULL, reason TEXT, PRIMARY KEY (kind, target))",
    "CREATE TABLE IF NOT EXISTS breaker_transitions ("
    " t DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,"
    " from_state TEXT NOT NULL, to_state TEXT NOT NULL, reason TEXT NOT NULL)",
]
_SCHEMA_LOCK = 727_274_001  # pg_advisory_xact_lock key: two hosts never create tables at once


def engine_url(url: str) -> str:
    """`url` with the psycopg driver (`postgresql+psycopg://`), whatever scheme it was given."""
    rest = url.split("://", 1)[1]
    return f"postgresql+psycopg://{rest}"


@functools.cache
def _engine(url: str) -> sa.Engine:
    import sqlalchemy as sa

    return sa.create_engine(engine_url(url), pool_pre_ping=True, pool_size=2)


@contextmanager
def advisory_lock(url: str, name: str) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock `name` (blocking): one holder among every host."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with _engine(url).connect() as con:
        con.exec_driver_sql("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            con.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (key,))
            con.commit()


class _Connection:
    """What the breakers' code uses of a sqlite3 connection: `execute(sql, params)`."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: tuple = ()):
        return self._connection.exec_driver_sql(sql.replace("?", "%s"), tuple(params))


class SharedStore:
    """The breakers' store in PostgreSQL: the same `read`, `write` and `now` as `StateStore`."""

    def __init__(self, url: str, clock=time.time) -> None:
        self.clock = clock
        self._engine = _engine(url)
        self._ready = False
        self._init_lock = threading.Lock()

    def _ensure_schema(self) -> None:
        with self._init_lock:
            if self._ready:
                return
            with self._engine.begin() as con:
                con.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
                for statement in SCHEMA:
                    con.exec_driver_sql(statement)
            self._ready = True

    @contextmanager
    def write(self) -> Iterator[_Connection]:
        """One decision: a transaction holding the breakers table's write lock."""
        self._ensure_schema()
        with self._engine.begin() as con:
            con.exec_driver_sql("LOCK TABLE breakers IN SHARE ROW EXCLUSIVE MODE")
            yield _Connection(con)

    def read(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of one read-only query."""
        self._ensure_schema()
        with self._engine.connect() as con:
            return [tuple(r) for r in _Connection(con).execute(sql, params).fetchall()]

    def now(self) -> float:
        """This host's wall clock in seconds (hosts keep theirs in sync, e.g. by NTP)."""
        return self.clock()
