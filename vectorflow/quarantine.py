"""`<data dir>/quarantine/`: where what cannot be used (a lake file, the catalog, `state.db`) is
set aside, never deleted.

Each thing set aside gets a new folder `<UTC stamp>-<hex>/` holding it at its path relative to
where it lived (a lake file under its partition folders, a database file under its own name)
and, beside it, `<name>.note.txt`: the path it came from, then why it was set aside.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path, PurePath

FOLDER = "quarantine"


def quarantine_target(data_dir: Path, relative: PurePath) -> Path:
    """A new place in `<data dir>/quarantine/` for something at `relative` (its folder made)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = data_dir / FOLDER / f"{stamp}-{uuid.uuid4().hex[:6]}" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def write_note(target: Path, source: PurePath, note: str) -> Path:
    """The note beside `target`: where it came from and why it was set aside."""
    path = target.with_name(target.name + ".note.txt")
    path.write_text(f"{source}\n{note}\n", encoding="utf-8")
    return path


def set_aside(
    data_dir: Path,
    path: Path,
    relative: PurePath,
    note: str,
    *,
    move: bool,
    companions: tuple[str, ...] = (),
) -> Path:
    """A local file or folder moved (`move`) or, when it must stay, hard-linked (copied across
    file systems) into the quarantine at `relative`, with its note; where it went.

    `companions` are suffixes of files that go with a moved one (a database's write-ahead log):
    each that exists is moved beside it under the same name plus its suffix.
    """
    target = quarantine_target(data_dir, relative)
    if move:
        shutil.move(path, target)
        for suffix in companions:
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
    else:
        try:
            os.link(path, target)
        except OSError:  # another file system
            shutil.copy2(path, target)
    write_note(target, path, note)
    return target
