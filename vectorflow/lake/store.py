"""Appending to a partition of a range dataset, and merging its files.

A *range dataset* (`Dataset.complete_ranges`) has files that each hold every key of their
partition between their first and last time, as named. That makes coverage cheap: what was
fetched is the union of the file ranges (plus the ranges the exchange confirmed empty, in
`coverage_ranges`), so an incremental run plans from file names without opening a file.

Writers of one partition are serialised by its lock (`Storage.lock`) and trim what another
writer landed meanwhile, so two runs of one series never write overlapping files. A write is
one new state of the partition (`Storage.open_version`), published at once. A file a merge
cannot read (truncated, or of a foreign schema) is moved to the quarantine instead of merged
(`vectorflow.lake.verify.set_aside_unusable`): its range is fetched again by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import pyarrow as pa

from vectorflow.lake.files import FileRange, partition_values
from vectorflow.lake.periods import period_end, period_start
from vectorflow.lake.reads import conform, name_range, read_rows, times_of, trim_covered
from vectorflow.lake.schema import Dataset
from vectorflow.lake.storage import Storage, Version
from vectorflow.lake.verify import set_aside_unusable


@dataclass(frozen=True)
class Written:
    """A file a write added (its rows include a merged tail's, if any)."""

    path: PurePath
    rows: int
    new_rows: int


def split_by_period(table: pa.Table, dataset: Dataset) -> list[pa.Table]:
    """Consecutive slices of a time-sorted table, one per compaction period."""
    t = times_of(table, dataset)
    if len(t) == 0:
        return []
    cuts, start = [], 0
    while start < len(t):
        end = int(np.searchsorted(t, period_end(int(t[start]), dataset.period), side="left"))
        cuts.append(table.slice(start, end - start))
        start = end
    return cuts


def contiguous_groups(
    files: list[FileRange], gap: int | None, bridges: list[tuple[int, int]] = ()
) -> list[list[FileRange]]:
    """Files grouped while each starts within `gap` of the group's end or across a bridge
    (a range known to be empty): one file may stand for a group without claiming a hole."""
    groups: list[list[FileRange]] = []
    end = None
    slack = gap or 1
    for f in sorted(files, key=lambda f: (f.first_ms, f.last_ms)):
        joined = end is not None and (
            gap is None
            or f.first_ms - end <= gap
            or any(a <= end + slack and f.first_ms <= b + slack for a, b in bridges)
        )
        if joined:
            groups[-1].append(f)
            end = max(end, f.last_ms)
        else:
            groups.append([f])
            end = f.last_ms
    return groups


def merge_group(
    storage: Storage, dataset: Dataset, version: Version, group: list[FileRange], *,
    compact: bool = False,
) -> Written | None:  # fmt: skip
    """One file holding a group's rows, in the new state instead of the group (None: nothing
    of the group could be read)."""
    usable = set_aside_unusable(storage, dataset, version, group)
    if not usable:
        return None
    rows = read_rows(storage, [f.path for f in usable], dataset)
    first, last = name_range(rows, dataset)
    out = version.write(rows, first, last, compact=compact)
    for f in usable:
        version.remove(f)
    return Written(out.path, rows.num_rows, 0)


def _merge_small_files(
    storage: Storage, dataset: Dataset, version: Version, period: int, limits: tuple[int, int]
) -> None:
    """When a period holds `merge_files` small files, merge each contiguous run of them."""
    merge_rows, merge_files = limits
    if merge_files < 2:
        return
    small = [
        f
        for f in version.files
        if not f.compact and period_start(f.first_ms, dataset.period) == period
    ]
    if len(small) < merge_files:
        return
    small = set_aside_unusable(storage, dataset, version, small)
    small = [f for f in small if storage.parquet_file(f.path).metadata.num_rows < merge_rows]
    if len(small) < merge_files:
        return
    gap = dataset.gap_ms(partition_values(dataset, version.folder))
    for group in contiguous_groups(small, gap):
        if len(group) > 1:
            merge_group(storage, dataset, version, group)


def append(
    storage: Storage,
    dataset: Dataset,
    folder: PurePath,
    table: pa.Table,
    *,
    merge_rows: int,
    grace_seconds: float,
    merge_files: int = 8,
) -> list[Written]:
    """Land time-sorted rows in a partition: trimmed, split by period, small files merged.

    Under the partition lock: what other writers landed meanwhile is trimmed away; when a
    period gathers `merge_files` small files (under `merge_rows` rows), they are merged into
    one. All of it is published as one new state.
    """
    if table.num_rows == 0:
        return []
    table = conform(table, dataset.schema, dict(dataset.defaults))
    landed = []
    with storage.lock(folder):
        version = storage.open_version(folder, dataset)
        for chunk in split_by_period(trim_covered(table, dataset, version.files), dataset):
            first, last = name_range(chunk, dataset)
            out = version.write(chunk, first, last)
            landed.append(Written(version.where(out.path.name), chunk.num_rows, chunk.num_rows))
            period = period_start(first, dataset.period)
            _merge_small_files(storage, dataset, version, period, (merge_rows, merge_files))
        version.publish(grace_seconds)
    return landed


def replace_from(
    storage: Storage,
    dataset: Dataset,
    version: Version,
    table: pa.Table,
    start_ms: int,
    *,
    merge_rows: int,
    merge_files: int = 8,
) -> None:
    """Make the rows of `version` from `start_ms` on exactly those of `table` (time-sorted, none
    before `start_ms`): files wholly from then on leave the state, a file straddling it is
    rewritten with its earlier rows, small files are merged as `append` merges them.

    Call under the partition's lock, then publish: readers see the old rows or the new ones.
    """
    table = conform(table, dataset.schema, dict(dataset.defaults))
    if table.num_rows and int(times_of(table, dataset)[0]) < start_ms:
        raise ValueError(f"rows before {start_ms} given to replace the rows from it on")
    for f in version.files:
        if f.last_ms < start_ms:
            continue
        if f.first_ms < start_ms and set_aside_unusable(storage, dataset, version, [f]):
            rows = read_rows(storage, [f.path], dataset)
            head = rows.slice(0, int(np.searchsorted(times_of(rows, dataset), start_ms)))
            if head.num_rows:
                version.write(head, *name_range(head, dataset), compact=f.compact)
        if f in version.files:
            version.remove(f)
    for chunk in split_by_period(table, dataset):
        first, last = name_range(chunk, dataset)
        version.write(chunk, first, last)
        period = period_start(first, dataset.period)
        _merge_small_files(storage, dataset, version, period, (merge_rows, merge_files))
