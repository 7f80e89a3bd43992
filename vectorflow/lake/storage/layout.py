"""What can be wrong with the layout of a partition on disk (not with its files' contents)."""

from __future__ import annotations

import os
from pathlib import Path

from vectorflow.lake.files import CURRENT, MANIFEST, files_in, version_name, version_number
from vectorflow.lake.storage.base import Problem
from vectorflow.lake.storage.snapshots import (
    BUILD_PREFIX,
    link_problem,
    linked_number,
    read_manifest,
    snapshot_numbers,
)

LOCK_NAME = ".lock"
RELINK = "`current` linked to the newest complete snapshot"
QUARANTINE = "moved to the quarantine"
REMOVE = "removed (it was never published)"


def loose_entries(folder: Path) -> list[str]:
    """Names in a partition folder that belong to no snapshot (never read)."""
    return sorted(
        name for name in os.listdir(folder)
        if name not in (CURRENT, LOCK_NAME) and version_number(name) is None
        and not name.startswith((BUILD_PREFIX, f".{CURRENT}."))
    )  # fmt: skip


def unpublished(folder: Path) -> list[str]:
    """Builds that died before publishing: `.build-*`, temp links, snapshots above `current`."""
    names = [n for n in os.listdir(folder) if n.startswith((BUILD_PREFIX, f".{CURRENT}."))]
    linked = linked_number(folder)
    if linked is not None:
        names += [version_name(n) for n in snapshot_numbers(folder) if n > linked]
    return sorted(names)


def strangers(snapshot: Path) -> list[str]:
    """Entries of the published snapshot that its manifest does not list (put there by hand)."""
    manifest = read_manifest(snapshot)
    names = [n for n in os.listdir(snapshot) if n != MANIFEST]
    if manifest is None:  # a snapshot of a version without manifests: its data files count
        known = {f.path.name for f in files_in(snapshot, names)}
        return sorted(n for n in names if n not in known)
    return sorted(n for n in names if n not in manifest)


def manifest_problems(snapshot: Path) -> list[Problem]:
    """A published snapshot whose manifest is missing or lists files it does not hold."""
    manifest = read_manifest(snapshot)
    if manifest is None:
        return [Problem(str(snapshot / MANIFEST), "missing", "written from the files")]
    present = set(os.listdir(snapshot))
    return [
        Problem(str(snapshot / name), "listed in the manifest but missing",
                "manifest rewritten; the next run with --since refetches its range")
        for name in sorted(set(manifest) - present)
    ]  # fmt: skip


def problems(folder: Path) -> list[Problem]:
    """The link, loose entries, unfinished builds and the published snapshot's manifest."""
    link = link_problem(folder)
    found = [Problem(str(folder / CURRENT), link, RELINK)] if link else []
    found += [Problem(str(folder / n), "not part of any snapshot (never read)", QUARANTINE)
              for n in loose_entries(folder)]  # fmt: skip
    found += [Problem(str(folder / n), "an unfinished build", REMOVE) for n in unpublished(folder)]
    linked = linked_number(folder)
    if linked is not None:
        snapshot = folder / version_name(linked)
        found += manifest_problems(snapshot)
        found += [Problem(str(snapshot / n), "not in the snapshot's manifest (never written "
                          "by a writer)", QUARANTINE) for n in strangers(snapshot)]  # fmt: skip
    return found
