"""Checking the whole lake, and repairing what can be repaired (`vectorflow doctor`).

Every partition of a range dataset: its layout (the `current` link, its snapshot's manifest,
entries no snapshot holds, builds never published: `Storage.layout_problems`) and every file
against its name, its recorded rows and its dataset's schema (`vectorflow.lake.verify`). Files
of the other datasets: that they read and hold their dataset's columns. Repairing links
`current` to the newest complete snapshot, rewrites a readable file by what it holds, and moves
what cannot be read or belongs to no snapshot into `<data dir>/quarantine/` with a note; it
deletes only builds that were never published. A range set aside is fetched again by the next
run whose `--since` covers it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath

from vectorflow.lake.compact import partition_folders
from vectorflow.lake.schema import DATASETS, Dataset
from vectorflow.lake.storage import Problem, Storage
from vectorflow.lake.verify import file_problem, repair_files

REWRITE = "rewritten by what it holds (a copy quarantined); the rest of its range is refetched"
QUARANTINE = "moved to the quarantine; its range is refetched by the next run covering it"


def _partitions(storage: Storage, datasets: list[str] | None) -> Iterator[tuple[Dataset, PurePath]]:
    for dataset in DATASETS.values():
        if not datasets or dataset.name in datasets:
            for folder in partition_folders(storage, dataset):
                yield dataset, folder


def file_problems(storage: Storage, dataset: Dataset, folder: PurePath) -> list[Problem]:
    """The files of one partition that do not hold what their name, their snapshot's record
    or their dataset's schema say."""
    recorded = storage.recorded_rows(folder)
    found = []
    for f in storage.files(folder, dataset):
        what, readable = file_problem(storage, f, dataset, recorded.get(f.path.name))
        if what is not None and (dataset.complete_ranges or not readable):
            repair = REWRITE if readable else QUARANTINE
            found.append(Problem(str(f.path), what, repair))
    return found


def partition_problems(storage: Storage, dataset: Dataset, folder: PurePath) -> list[Problem]:
    """What is wrong with one partition: its layout (range datasets), then its files."""
    layout = storage.layout_problems(folder) if dataset.complete_ranges else []
    return layout + file_problems(storage, dataset, folder)


def check_lake(storage: Storage, datasets: list[str] | None = None) -> list[Problem]:
    """Everything wrong in the lake (or in `datasets`), by path; nothing is changed."""
    found = []
    for dataset, folder in _partitions(storage, datasets):
        found += partition_problems(storage, dataset, folder)
    return found


def _repair_flat(storage: Storage, dataset: Dataset, folder: PurePath) -> list[str]:
    done = []
    for problem in file_problems(storage, dataset, folder):
        path = folder / PurePath(problem.path).name
        storage.quarantine(path, problem.what, move=True)
        done.append(f"{problem.path}: {problem.what}; moved to the quarantine")
    return done


def repair_partition(
    storage: Storage, dataset: Dataset, folder: PurePath, grace_seconds: float
) -> list[str]:
    """Repair one partition (see the module docstring); what was done, by path."""
    if not dataset.complete_ranges:
        return _repair_flat(storage, dataset, folder)
    done = storage.repair_link(folder)
    if storage.layout_problems(folder):
        done += storage.repair_layout(folder, grace_seconds)
    if file_problems(storage, dataset, folder):
        done += repair_files(storage, dataset, folder, grace_seconds)
    return done


def repair_lake(
    storage: Storage, grace_seconds: float, datasets: list[str] | None = None
) -> list[str]:
    """Repair every partition with a problem; what was done, by path."""
    done = []
    for dataset, folder in _partitions(storage, datasets):
        if partition_problems(storage, dataset, folder):
            done += repair_partition(storage, dataset, folder, grace_seconds)
    return done
