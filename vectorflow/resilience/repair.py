"""Check and repair `<data dir>/state.db`: a damaged file goes into quarantine, never away.

The file holds rate-limit reservations, blocks and breakers only: an empty one is a sound start
(the exchanges' own counts and bans are read again from their next answers).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path, PurePath

from vectorflow.errors import CorruptState
from vectorflow.quarantine import set_aside
from vectorflow.resilience.guard import forget_guards
from vectorflow.resilience.store import StateStore, corruption_named

SIDECARS = ("", "-wal", "-shm")  # SQLite's write-ahead log and its index belong with the file


def check_state(path: Path) -> None:
    """CorruptState naming `path` when it exists and SQLite finds it damaged."""
    if not path.exists():
        return
    with corruption_named(path):
        con = sqlite3.connect(path, timeout=60)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
    if rows != [("ok",)]:
        raise CorruptState(path, "; ".join(str(r[0]) for r in rows[:3]))


def repair_state(path: Path) -> Path | None:
    """Move a damaged `path` (and its WAL files) into `<data dir>/quarantine/` with a note, and
    start an empty one; the quarantined file's path, or None when it was sound or absent."""
    path = Path(path)
    try:
        check_state(path)
        return None
    except CorruptState as exc:
        why = exc.why
    forget_guards(path)  # this process's connections to the damaged file go with their guards
    note = (
        f"moved here by repair_state: {why}. It held rate-limit reservations, blocks and "
        "circuit breakers; an empty file took its place."
    )
    moved = set_aside(path.parent, path, PurePath(path.name), note, move=True,
                      companions=SIDECARS[1:])  # fmt: skip
    StateStore(path).read("SELECT count(*) FROM breakers")  # the empty file, schema and all
    return moved
