"""`<data dir>/state.db`: the SQLite file holding the state every process on the host shares.

Why SQLite transactions and not pyrate-limiter's SQLite bucket: the limiter must take the
exchange's own word into account -- the weight `X-MBX-USED-WEIGHT-1M` says is used (which counts
other programs on the same IP), a `Retry-After` or a ban that blocks the whole exchange -- and
pyrate-limiter's buckets only count the items put into them, with no way to add what the server
reports nor to block until a given time. Breakers need the same file anyway. So each decision
(reserve weight, record feedback, move a breaker) is one `BEGIN IMMEDIATE` transaction: SQLite
serialises writers across processes with its own locking, WAL mode lets readers go on, and a
process killed mid-transaction leaves nothing behind (the journal rolls it back).

A damaged file (not a database, a malformed page) raises CorruptState naming it;
`vectorflow.resilience.repair.repair_state` moves it into `<data dir>/quarantine/`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vectorflow.errors import CorruptState

SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_events (
    budget TEXT NOT NULL, t REAL NOT NULL, weight INTEGER NOT NULL, source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_events_budget_t ON rate_events (budget, t);
CREATE TABLE IF NOT EXISTS rate_feedback (
    budget TEXT PRIMARY KEY, t REAL, used INTEGER, window INTEGER, foreign_weight INTEGER,
    probe_until REAL
);
CREATE TABLE IF NOT EXISTS rate_blocks (
    exchange TEXT PRIMARY KEY, since REAL NOT NULL, until REAL NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS breakers (
    kind TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, failures INTEGER NOT NULL,
    opened_at REAL, probe_until REAL, updated_at REAL NOT NULL, reason TEXT,
    PRIMARY KEY (kind, target)
);
CREATE TABLE IF NOT EXISTS breaker_transitions (
    t REAL NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,
    from_state TEXT NOT NULL, to_state TEXT NOT NULL, reason TEXT NOT NULL
);
"""


#: SQLite's primary result codes of a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB
CORRUPT_CODES = frozenset({11, 26})


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """True when SQLite says the file itself is damaged (not busy, locked or read-only)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in CORRUPT_CODES


@contextmanager
def corruption_named(path: Path) -> Iterator[None]:
    """Re-raise SQLite's word on a damaged file as CorruptState naming `path`."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        raise CorruptState(path, str(exc)) from exc


class StateStore:
    """One SQLite file, one connection per thread, a write transaction per decision."""

    def __init__(self, path: Path, clock=time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._local = threading.local()
        self._init_lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        with corruption_named(self.path):
            return self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        con.execute("PRAGMA busy_timeout = 60000")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        with self._init_lock:
            if not self._ready:
                con.execute("BEGIN IMMEDIATE")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute("COMMIT")
                self._ready = True
        return con

    @property
    def connection(self) -> sqlite3.Connection:
        """This thread's connection."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: taken at once (`BEGIN IMMEDIATE`), committed on success."""
        con = self.connection
        with corruption_named(self.path):
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def read(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of one read-only query."""
        with corruption_named(self.path):
            return self.connection.execute(sql, params).fetchall()

    def now(self) -> float:
        """The host's wall clock in seconds (shared by every process, and the simulator)."""
        return self.clock()
