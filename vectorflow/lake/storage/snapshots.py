"""Snapshot directories of a partition on disk: manifests, the `current` link and its recovery.

A partition folder holds snapshot directories `v00000001/`, ... and a symlink
`current -> vNNNNNNNN` to the published one. A snapshot is built in `.build-vNNNNNNNN/`; its
manifest (`_manifest.json`: its files with their rows and bytes) is written last inside it,
then it is renamed to `vNNNNNNNN` and `current` is swapped to it. So a `vNNNNNNNN` with a
manifest is *complete*, and a `.build-*` directory is a build that crashed. `current` is the
state while it links to a snapshot. When it is missing, dangling or not a link (a copy that
skipped or followed symlinks), the newest complete snapshot is the state: `recover` links it
again and says so (a warning); what it cannot place goes to the quarantine, never deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from vectorflow.lake.files import CURRENT, MANIFEST, files_in, version_name, version_number

log = logging.getLogger(__name__)

#: A superseded snapshot directory stays at least this long: a reader that began listing it
#: just before the swap finishes its listing before the directory is emptied.
MIN_GRACE_SECONDS = 2.0
BUILD_PREFIX = ".build-"  # a snapshot being built (a crashed build, when no writer holds the lock)
Manifest = dict[str, tuple[int, int]]  # file name -> (rows, bytes)
Quarantine = Callable[[Path, str], object]  # moves a path out of the lake, with a note


def effective_grace(grace_seconds: float) -> float:
    """The configured grace, but at least `MIN_GRACE_SECONDS` (seconds)."""
    return max(grace_seconds, MIN_GRACE_SECONDS)


def fsync_dir(folder: Path) -> None:
    """Make a directory's entries durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(snapshot: Path) -> Manifest | None:
    """A snapshot's manifest; None when it has none (or an unreadable one): not complete."""
    try:
        files = json.loads((snapshot / MANIFEST).read_text(encoding="utf-8"))["files"]
        return {name: (int(v["rows"]), int(v["bytes"])) for name, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def measured_manifest(snapshot: Path) -> Manifest:
    """A manifest of a snapshot's files as they are (rows from their footers, bytes)."""
    return {
        f.path.name: (pq.read_metadata(f.path).num_rows, os.stat(f.path).st_size)
        for f in files_in(snapshot, os.listdir(snapshot))
    }


def write_manifest(snapshot: Path, number: int, entries: Manifest) -> None:
    """Write a snapshot's manifest (temp file, fsync, rename): the snapshot is complete."""
    body = {"snapshot": number, "files": {n: {"rows": r, "bytes": b} for n, (r, b) in
                                          sorted(entries.items())}}  # fmt: skip
    tmp = snapshot / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", encoding="utf-8") as sink:
        json.dump(body, sink, indent=0)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(tmp, snapshot / MANIFEST)


def snapshot_numbers(folder: Path) -> list[int]:
    """The numbers of a partition's snapshot directories, ascending."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in map(version_number, names) if n is not None)


def linked_number(folder: Path) -> int | None:
    """The snapshot `current` links to, when it is a link to a snapshot directory of `folder`."""
    try:
        target = os.readlink(folder / CURRENT)
    except OSError:  # missing, or not a link
        return None
    number = version_number(target)
    return number if number is not None and os.path.isdir(folder / target) else None


def _files_open(snapshot: Path) -> bool:
    try:
        for f in files_in(snapshot, os.listdir(snapshot)):
            pq.read_metadata(f.path)
    except Exception:  # noqa: BLE001 - any failure: not a snapshot one can read
        return False
    return True


def newest_complete(folder: Path, numbers: list[int]) -> tuple[int | None, bool]:
    """(the newest complete snapshot, True) or, when no snapshot has a manifest (a lake written
    before manifests), (the newest one whose files all open, False); (None, False): none."""
    for n in reversed(numbers):
        if read_manifest(folder / version_name(n)) is not None:
            return n, True
    for n in reversed(numbers):
        if _files_open(folder / version_name(n)):
            return n, False
    return None, False


def readable_snapshot(folder: Path) -> Path | None:
    """Where to read a partition whose `current` cannot be listed: its newest complete
    snapshot (a warning says so), or None when it has none."""
    numbers = snapshot_numbers(folder)
    if not numbers:
        return None
    number, _ = newest_complete(folder, numbers)
    if number is None:
        log.warning("%s: no readable snapshot; run `vectorflow doctor`", folder)
        return None
    log.warning("%s: `current` is missing or dangling; reading %s, its newest complete "
                "snapshot (the next write or `vectorflow doctor --repair` relinks it)",
                folder, version_name(number))  # fmt: skip
    return folder / version_name(number)


@dataclass
class State:
    """A partition's published snapshot (0: none), snapshots proven never published, and what
    recovery did."""

    number: int
    unpublished: list[int] = field(default_factory=list)  # above a valid `current`
    notes: list[str] = field(default_factory=list)


def link_problem(folder: Path) -> str | None:
    """What is wrong with a partition's `current` (None: a link to one of its snapshots, or
    no snapshot yet)."""
    current = folder / CURRENT
    if linked_number(folder) is not None:
        return None
    if os.path.islink(current):
        return f"`current` is dangling (-> {os.readlink(current)})"
    if os.path.isdir(current):
        return "`current` is a directory, not a link (a copy that followed symlinks)"
    if os.path.lexists(current):
        return "`current` is not a link"
    return "`current` is missing" if snapshot_numbers(folder) else None


def published_state(folder: Path) -> State:
    """The state `current` says, when it is a valid link: a snapshot above it was built by a
    writer that died before publishing it."""
    number = linked_number(folder) or 0
    return State(number, [n for n in snapshot_numbers(folder) if n > number])


def _copy_of(copied: Path, folder: Path, numbers: list[int]) -> int | None:
    """The snapshot a directory is a copy of (the same files, of the same sizes), if any."""
    def sizes(where: Path) -> dict[str, int]:
        return {f.path.name: os.stat(f.path).st_size for f in files_in(where, os.listdir(where))}

    mine = sizes(copied)
    return next((n for n in reversed(numbers) if sizes(folder / version_name(n)) == mine), None)


def _place_current(folder: Path, numbers: list[int], quarantine: Quarantine) -> list[str]:
    """Move what stands at `current` and is no link out of the way (never deleted)."""
    current = folder / CURRENT
    if os.path.islink(current) or not os.path.lexists(current):
        return []
    if not os.path.isdir(current):
        quarantine(current, "`current` was not a link to a snapshot")
        return ["moved a `current` that was not a link to the quarantine"]
    copy = _copy_of(current, folder, numbers)
    if copy is not None:
        quarantine(current, f"a copy of {version_name(copy)} (a copy followed symlinks)")
        return [f"moved `current`, a directory copy of {version_name(copy)}, to the quarantine"]
    number = max(numbers, default=0) + 1  # holds what no snapshot holds: it is the newest
    try:
        measured = read_manifest(current) or measured_manifest(current)
    except Exception as exc:  # noqa: BLE001 - a file that does not read: keep it all aside
        quarantine(current, f"`current` was a directory with unreadable files ({exc})")
        return ["moved `current`, a directory with unreadable files, to the quarantine"]
    snapshot = folder / version_name(number)
    os.rename(current, snapshot)
    write_manifest(snapshot, number, measured)
    numbers.append(number)
    return [f"kept the directory `current` as snapshot {version_name(number)}"]


def point_current(folder: Path, number: int) -> None:
    """Swap `current` to snapshot `number` (a temp symlink renamed over it: atomic)."""
    tmp = folder / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    os.symlink(version_name(number), tmp)
    os.replace(tmp, folder / CURRENT)
    fsync_dir(folder)


def recover(folder: Path, quarantine: Quarantine) -> State:
    """The partition's state, with `current` linked to it again if it was not (call under the
    partition's lock): the newest complete snapshot; what could not be placed is quarantined."""
    problem = link_problem(folder)
    if problem is None:
        return published_state(folder)
    numbers = snapshot_numbers(folder)
    notes = _place_current(folder, numbers, quarantine)
    number, _ = newest_complete(folder, numbers)
    for n in [n for n in numbers if number is None or n > number]:
        quarantine(folder / version_name(n), "a snapshot directory without a manifest")
        notes.append(f"moved {version_name(n)} (not provably complete) to the quarantine")
    if number is not None:
        point_current(folder, number)
        notes.append(f"linked `current` to {version_name(number)}, the newest complete snapshot")
    elif os.path.islink(folder / CURRENT):  # points at nothing, and nothing is there to point at
        os.unlink(folder / CURRENT)
        notes.append("removed `current`: no snapshot is there to link")
    for note in notes:
        log.warning("%s: %s; %s", folder, problem, note)
    return State(number or 0, [], [f"{problem}; {note}" for note in notes])


def remove_crashed(folder: Path, state: State) -> None:
    """Remove builds that died before publishing (`.build-*`, snapshots above `current`) and
    crashed publishes' temp links; call under the lock."""
    for n in state.unpublished:
        shutil.rmtree(folder / version_name(n), ignore_errors=True)
    for name in os.listdir(folder):
        if name.startswith(BUILD_PREFIX):
            shutil.rmtree(folder / name, ignore_errors=True)
        elif name.startswith(f".{CURRENT}."):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / name)


def remove_superseded(folder: Path, grace_seconds: float) -> list[Path]:
    """Delete snapshot directories superseded more than the grace ago; call under the lock.

    A snapshot was superseded when the next one was published (that directory's mtime). Only
    snapshots below a valid `current` are considered: nothing when the link is not valid.
    """
    current = linked_number(folder)
    if current is None:
        return []
    now = time.time()
    grace = effective_grace(grace_seconds)
    numbers = [n for n in snapshot_numbers(folder) if n <= current]
    removed = []
    for older, newer in zip(numbers, numbers[1:], strict=False):
        try:
            superseded = os.stat(folder / version_name(newer)).st_mtime
        except FileNotFoundError:
            continue
        if now - superseded > grace:
            shutil.rmtree(folder / version_name(older), ignore_errors=True)
            removed.append(folder / version_name(older))
    if removed:
        log.debug("removed %d superseded snapshots in %s", len(removed), folder)
    return removed
