"""Check and repair `<data dir>/state.db`: a damaged file goes into quarantine, never away.

The file holds rate-limit reservations, blocks and breakers only: an empty one is a sound start
(the exchanges' own counts and bans are read again from their next answers).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from vectorflow.errors import CorruptState
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
    quarantine = path.parent / "quarantine"
    quarantine.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    moved = quarantine / f"{path.name}.{stamp}"
    forget_guards(path)  # this process's connections to the damaged file go with their guards
    for suffix in SIDECARS:
        if (side := path.with_name(path.name + suffix)).exists():
            os.replace(side, moved.with_name(moved.name + suffix))
    moved.with_name(moved.name + ".txt").write_text(
        f"{path} was moved here on {stamp} by repair_state: {why}.\n"
        "It held rate-limit reservations, blocks and circuit breakers; an empty file took its"
        " place.\n",
        encoding="utf-8",
    )
    StateStore(path).read("SELECT count(*) FROM breakers")  # the empty file, schema and all
    return moved
