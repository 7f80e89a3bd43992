"""Appending to a partition of a range dataset: snapshots published by an atomic symlink swap.

A *range dataset* (`Dataset.complete_ranges`) has files that each hold every key of their
partition between their first and last time, as named. That makes coverage cheap: what was
fetched is the union of the file ranges (plus the ranges the exchange confirmed empty, in
`coverage_ranges`), so an incremental run plans from file names without opening a file.

**Snapshots.** A partition folder holds snapshot directories `v00000001/`, `v00000002/`, ...
and a symlink `current -> vNNNNNNNN`. A writer, under the partition's lock, builds the next
snapshot (`Version`): a new directory with hard links to the files that stay and its new
files (temp name + rename), then publishes it by `os.replace` of a temp symlink over `current`
(rename(2) is atomic). A snapshot is never changed once published. Within one snapshot no file
overlaps another: a merge (ingest gathering `merge_files` small files of a period, compaction,
a retention cut) publishes its output *without* its inputs. So the views read
`*/current/*.parquet` as it is, with no deduplication and no per-query choice of files
(`vectorflow.lake.scan`), and a query sees each row once: a directory is listed at once, and a
file listed in one snapshot and opened after the swap is the same file (kept: a hard link) or
gone ("No such file": the query is run again, `vectorflow.lake.files.reading_again`).
Superseded snapshot directories are removed by a later writer once they have been superseded
for the grace period (running listings of them finish first); a crash mid-build leaves an
unpublished directory that the next writer removes.

Files put directly in a partition folder (the older flat layout, or copied there by hand) are
adopted by the next writer or catalog refresh: moved into a snapshot, dominated files dropped
(a file whose range lies inside another's holds nothing the other lacks) and overlapping ones
merged, the newest `ingested_at` winning per key.

Writers of one partition are serialised by a lock file in it (`fcntl.flock`, one host), and
trim what another writer landed meanwhile, so two runs of one series never write overlapping
files.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from vectorflow.lake.files import (
    COMPACT_SUFFIX,
    CURRENT,
    TMP_SUFFIX,
    FileRange,
    data_files,
    dominator,
    loose_files,
    object_files,
    parquet_file,
    parse_name,
    version_name,
    version_number,
    write_atomic,
)
from vectorflow.lake.objects import (
    LakePath,
    ObjectPath,
    fs_of,
    is_object,
    lake_connection,
    list_objects,
    lock_file,
    shared_lock_url,
)
from vectorflow.lake.schema import Dataset
from vectorflow.timeframes import timeframe_ms

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
STRAY_TEMP_SECONDS = 3600  # a temp file this old is a crashed writer's leftover
#: A superseded snapshot directory stays at least this long: a reader that began listing it
#: just before the swap finishes its listing before the directory is emptied.
MIN_GRACE_SECONDS = 2.0
FUNDING_GAP_MS = 8 * 3_600_000  # the longest funding interval: a shorter hole is no gap


@contextlib.contextmanager
def partition_lock(folder: LakePath) -> Iterator[None]:
    """Hold the partition's write lock (blocking); readers never take it.

    An object-store partition's lock is a PostgreSQL advisory lock when hosts share state
    (every host), else a file in the local data dir (this host).
    """
    if is_object(folder) and shared_lock_url():
        from vectorflow.resilience.shared import advisory_lock

        with advisory_lock(shared_lock_url(), f"lake partition {folder}"):
            yield
        return
    if is_object(folder):
        path = lock_file(folder)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOCK_NAME
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def partition_values(dataset: Dataset, folder: Path) -> dict[str, str]:
    """The partition values encoded in a folder path (`exchange=binance/...`)."""
    parts = dict(p.split("=", 1) for p in folder.parts if "=" in p)
    return {key: parts[key] for key in dataset.partitions if key in parts}


def period_start(ms: int, period: str) -> int:
    """Start of the UTC day, month or year containing `ms`."""
    if period == "day":
        return ms // 86_400_000 * 86_400_000
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    first = dt.replace(day=1, hour=0, minute=0, second=0) if period == "month" else None
    if period == "year":
        first = dt.replace(month=1, day=1, hour=0, minute=0, second=0)
    if first is None:
        raise ValueError(f"unknown period {period!r}")
    return int(first.timestamp()) * 1000


def period_end(ms: int, period: str) -> int:
    """Start of the period after the one containing `ms`."""
    start = period_start(ms, period)
    if period == "day":
        return start + 86_400_000
    ahead = 32 if period == "month" else 367  # days: always inside the next period
    return period_start(start + ahead * 86_400_000, period)


def adjacency_ms(dataset: Dataset, values: dict[str, str]) -> int | None:
    """Largest distance between two rows of one fetched range (None: no gaps in this dataset)."""
    if "timeframe" in values:
        return timeframe_ms(values["timeframe"])
    if dataset.name == "open_interest":
        return timeframe_ms(values["period"])
    if dataset.name == "funding_rates":
        return FUNDING_GAP_MS
    if dataset.name == "coverage_ranges":
        return 1
    return None  # order book snapshots: never refetched, so a hole is never a fetch gap


def conform(table: pa.Table, schema: pa.Schema, defaults: dict | None = None) -> pa.Table:
    """`table` in `schema`: columns in order, missing ones (older files) as nulls or defaults."""
    arrays = []
    for f in schema:
        if f.name in table.column_names:
            column = table.column(f.name).cast(f.type)
        else:
            column = pa.nulls(table.num_rows, f.type)
        if defaults and f.name in defaults:
            column = column.fill_null(pa.scalar(defaults[f.name], f.type))
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


#: Datasets whose rows span a range: a file is named up to its last row's end (exclusive - 1 ms)
RANGE_END = {"coverage_ranges": "range_end"}


def times_of(table: pa.Table, dataset: Dataset, column: str | None = None) -> np.ndarray:
    """The `order_by` (or `column`) times of a table as int64 ms."""
    values = table.column(column or dataset.order_by)
    return values.cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy()


def name_range(table: pa.Table, dataset: Dataset) -> tuple[int, int]:
    """The [first, last] a file holding `table` (time-sorted) is named by."""
    t = times_of(table, dataset)
    end = RANGE_END.get(dataset.name)
    last = int(times_of(table, dataset, end).max()) - 1 if end else int(t[-1])
    return int(t[0]), last


def trim_covered(table: pa.Table, dataset: Dataset, files: list[FileRange]) -> pa.Table:
    """Drop rows whose time lies inside a file already there (another writer landed them)."""
    if not files or table.num_rows == 0:
        return table
    t = times_of(table, dataset)
    inside = np.zeros(len(t), dtype=bool)
    for f in files:
        if f.first_ms <= t[-1] and f.last_ms >= t[0]:
            inside |= (t >= f.first_ms) & (t <= f.last_ms)
    return table.filter(pa.array(~inside)) if inside.any() else table


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


@dataclass(frozen=True)
class Written:
    """A file a write added (its rows include a merged tail's, if any)."""

    path: Path
    rows: int
    new_rows: int


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


def read_rows(paths: list[LakePath], dataset: Dataset) -> pa.Table:
    """The rows of some files, one per key (newest `ingested_at`), sorted by time then key.

    Objects in S3 are read whole by pyarrow (one GET each) and deduplicated in memory: DuckDB's
    fsspec bridge would ask for each one's metadata a dozen times (benchmarks/lake_s3.py).
    """
    key = ", ".join(f'"{k}"' for k in dataset.key)
    defaults = dict(dataset.defaults)
    con = lake_connection()
    try:
        if paths and is_object(paths[0]):
            whole = [conform(parquet_file(p).read(), dataset.schema, defaults) for p in paths]
            con.register("stored_rows", pa.concat_tables(whole))
            source = "stored_rows"
        else:
            files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
            source = (f"read_parquet([{files}], union_by_name = true, "
                      "hive_partitioning = false)")  # fmt: skip
        table = con.sql(
            f"SELECT * FROM {source} "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ingested_at DESC) = 1 "
            f'ORDER BY "{dataset.order_by}", {key}'
        ).to_arrow_table()
    finally:
        con.close()
    return conform(table, dataset.schema, defaults)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def effective_grace(grace_seconds: float) -> float:
    """The configured grace, but at least `MIN_GRACE_SECONDS` (seconds)."""
    return max(grace_seconds, MIN_GRACE_SECONDS)


def current_version(folder: Path) -> int:
    """The number of a partition's published snapshot (0: none yet)."""
    try:
        return version_number(os.readlink(folder / CURRENT)) or 0
    except (FileNotFoundError, OSError):
        return 0


class Version:
    """The next snapshot of a partition, built under its lock and published at once.

    `files` is what the snapshot will hold; their paths point at files one can read now (in
    the current snapshot, loose in the folder, or written into the new directory). Loose files
    are adopted at once (`_normalize`). Build with `write`, `remove` and `rename`, then
    `publish`. Nothing is visible before `publish`, and a writer that dies before it leaves a
    directory the next `Version` removes.
    """

    def __init__(self, folder: Path, dataset: Dataset) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.number = current_version(folder)
        self._remove_unpublished()
        self.dir = folder / version_name(self.number + 1)
        self._names: dict[str, Path] = {}  # name in the new snapshot -> the file to link
        base = folder / CURRENT if self.number else folder
        for f in data_files(folder) if self.number else []:
            self._names[f.path.name] = base / f.path.name
        self._loose = loose_files(folder)
        self.changed = bool(self._loose)
        for f in self._loose:
            self._names[f.path.name] = f.path
        self._normalize(dataset)

    def _remove_unpublished(self) -> None:
        for name in os.listdir(self.folder):
            number = version_number(name)
            if number is not None and number > self.number:
                shutil.rmtree(self.folder / name, ignore_errors=True)  # a crashed build
            elif name.startswith(f".{CURRENT}."):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.folder / name)  # a crashed publish's temp symlink

    @property
    def files(self) -> list[FileRange]:
        """The files of the snapshot being built, by time."""
        found = [FileRange(path, *parse_name(name)) for name, path in self._names.items()]
        return sorted(found, key=lambda f: (f.first_ms, f.last_ms))

    def name_of(self, file: FileRange) -> str:
        """The name `file` has in the snapshot being built."""
        return next(n for n, p in self._names.items() if p == file.path)

    def write(self, table: pa.Table, first: int, last: int, *, compact: bool = False) -> FileRange:
        """A new file of the snapshot (written now, visible once published)."""
        path = write_atomic(table, self.dir, first, last, compact=compact)
        self._names[path.name] = path
        self.changed = True
        return FileRange(path, first, last, compact)

    def _built_here(self, path: Path) -> bool:
        """True for a file written into the snapshot being built (not yet published)."""
        return path.parent == self.dir

    def remove(self, file: FileRange) -> None:
        """Leave `file` out of the snapshot (a file written for it is deleted at once)."""
        del self._names[self.name_of(file)]
        if self._built_here(file.path):
            os.unlink(file.path)
        self.changed = True

    def rename(self, file: FileRange, name: str) -> FileRange:
        """Keep `file` under another name (its link in the new snapshot gets that name)."""
        del self._names[self.name_of(file)]
        path = file.path
        if self._built_here(path):  # written for this snapshot: the file itself is renamed
            path = path.with_name(name)
            os.rename(file.path, path)
        self._names[name] = path
        self.changed = True
        return FileRange(path, *parse_name(name))

    def _normalize(self, dataset: Dataset) -> None:
        """Drop dominated files and merge overlapping ones (adopted loose files may be either)."""
        if not self._loose:
            return
        files = self.files
        for f in files:
            if dominator(f, files) is not None:
                self.remove(f)
        groups: list[list[FileRange]] = []
        for f in self.files:
            if groups and f.first_ms <= max(g.last_ms for g in groups[-1]):
                groups[-1].append(f)
            else:
                groups.append([f])
        for group in groups:
            if len(group) > 1:
                merge_group(dataset, self, group, compact=all(f.compact for f in group))

    def publish(self, grace_seconds: float) -> bool:
        """Make the snapshot current (if anything changed); False when nothing did.

        Links the kept files into the new directory, syncs it, swaps `current` to it, removes
        adopted loose files and the snapshots superseded for longer than the grace.
        """
        if not self.changed:
            return False
        files = self.files
        for a, b in zip(files, files[1:], strict=False):
            if b.first_ms <= a.last_ms:  # the invariant the views rely on: never publish it
                raise RuntimeError(f"snapshot of {self.folder} would overlap: {a.path} {b.path}")
        self.dir.mkdir(exist_ok=True)
        for name, path in self._names.items():
            target = self.dir / name
            if path != target:
                os.link(path, target)
        for stray in set(os.listdir(self.dir)) - set(self._names):
            os.unlink(self.dir / stray)  # written for this snapshot, then merged away
        _fsync_dir(self.dir)
        tmp = self.folder / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
        os.symlink(self.dir.name, tmp)
        os.replace(tmp, self.folder / CURRENT)
        _fsync_dir(self.folder)
        for f in self._loose:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f.path)
        self.number += 1
        self._loose = []
        self.changed = False
        remove_superseded(self.folder, grace_seconds)
        return True


class ObjectVersion:
    """The next state of an object-store partition, built under this host's lock.

    Object stores have no symlink to swap, so a partition is flat and a write is visible when
    its object is (`vectorflow.lake.objects`): outputs are written before their inputs are
    deleted (at `publish`), and readers keep the newest row per key (views) or leave dominated
    files out (`data_files`), so they never see a row twice or miss one. The same methods as
    `Version`.
    """

    def __init__(self, folder: ObjectPath, dataset: Dataset) -> None:
        self.folder = folder
        listing = list_objects(folder)  # one listing: the files, and crashed writers' temps
        self._files = {f.path.name: f for f in object_files(folder, listing)}
        self._written: set[str] = set()
        self._gone: list[FileRange] = []
        self.changed = False
        self._remove_stray_temps(listing)

    def _remove_stray_temps(self, listing: list[tuple[str, int, float]]) -> None:
        now = time.time()
        for name, _, mtime in listing:
            if name.endswith(TMP_SUFFIX) and now - mtime > STRAY_TEMP_SECONDS:
                (self.folder / name).unlink(missing_ok=True)

    @property
    def files(self) -> list[FileRange]:
        return sorted(self._files.values(), key=lambda f: (f.first_ms, f.last_ms))

    def name_of(self, file: FileRange) -> str:
        return file.path.name

    def write(self, table: pa.Table, first: int, last: int, *, compact: bool = False) -> FileRange:
        path = write_atomic(table, self.folder, first, last, compact=compact)
        self._files[path.name] = FileRange(path, first, last, compact)
        self._written.add(path.name)
        self.changed = True
        return self._files[path.name]

    def remove(self, file: FileRange) -> None:
        del self._files[file.path.name]
        if file.path.name in self._written:  # written by this writer: its rows are elsewhere
            file.path.unlink(missing_ok=True)
        else:
            self._gone.append(file)
        self.changed = True

    def rename(self, file: FileRange, name: str) -> FileRange:
        new = self.folder / name
        fs_of(new).copy_file(file.path.key, new.key)
        self.remove(file)
        self._files[name] = FileRange(new, *parse_name(name))
        return self._files[name]

    def publish(self, grace_seconds: float) -> bool:
        """Delete the files the new state leaves out (their rows are in its outputs)."""
        if not self.changed:
            return False
        for f in self._gone:
            f.path.unlink(missing_ok=True)
        self._gone, self._written, self.changed = [], set(), False
        return True


def open_version(folder: LakePath, dataset: Dataset) -> Version | ObjectVersion:
    """The next snapshot of a partition (call under its lock)."""
    return ObjectVersion(folder, dataset) if is_object(folder) else Version(folder, dataset)


def remove_superseded(folder: LakePath, grace_seconds: float) -> list[Path]:
    """Delete snapshot directories superseded more than the grace ago; call under the lock.

    A snapshot was superseded when the next one was published (that directory's mtime).
    Stray temp files of crashed writers (loose ones, of the flat layout) go too.
    """
    if is_object(folder):
        return []  # flat: nothing superseded is kept
    current = current_version(folder)
    now = time.time()
    grace = effective_grace(grace_seconds)
    numbers = sorted(
        n for n in map(version_number, os.listdir(folder)) if n is not None and n <= current
    )
    removed = []
    for older, newer in zip(numbers, numbers[1:], strict=False):
        try:
            superseded = os.stat(folder / version_name(newer)).st_mtime
        except FileNotFoundError:
            continue
        if now - superseded > grace:
            shutil.rmtree(folder / version_name(older), ignore_errors=True)
            removed.append(folder / version_name(older))
    for name in os.listdir(folder):
        if name.endswith(TMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                if now - os.stat(folder / name).st_mtime > STRAY_TEMP_SECONDS:
                    os.unlink(folder / name)
    if removed:
        log.debug("removed %d superseded snapshots in %s", len(removed), folder)
    return removed


def merge_group(
    dataset: Dataset, version: Version, group: list[FileRange], *, compact: bool = False
) -> Written:
    """One file holding a group's rows, in the snapshot instead of the group."""
    rows = read_rows([f.path for f in group], dataset)
    first, last = name_range(rows, dataset)
    out = version.write(rows, first, last, compact=compact)
    for f in group:
        version.remove(f)
    return Written(out.path, rows.num_rows, 0)


def _merge_small_files(
    dataset: Dataset, version: Version, period: int, limits: tuple[int, int]
) -> list[Written]:
    """When a period holds `merge_files` small files, merge each contiguous run of them."""
    merge_rows, merge_files = limits
    if merge_files < 2:
        return []
    small = [
        f
        for f in version.files
        if not f.compact and period_start(f.first_ms, dataset.period) == period
    ]
    if len(small) < merge_files:
        return []
    small = [f for f in small if parquet_file(f.path).metadata.num_rows < merge_rows]
    if len(small) < merge_files:
        return []
    gap = adjacency_ms(dataset, partition_values(dataset, version.folder))
    groups = [g for g in contiguous_groups(small, gap) if len(g) > 1]
    return [merge_group(dataset, version, g) for g in groups]


def adopt(dataset: Dataset, folder: Path, grace_seconds: float = 0.0) -> bool:
    """Move files lying directly in a partition folder into a new snapshot (True if any).

    Migrates a folder of the older flat layout; cheap (one listing) when there is nothing to do.
    """
    if is_object(folder) or not loose_files(folder):
        return False
    with partition_lock(folder):
        version = open_version(folder, dataset)
        return version.publish(grace_seconds)


def append(
    dataset: Dataset,
    folder: Path,
    table: pa.Table,
    *,
    merge_rows: int,
    grace_seconds: float,
    merge_files: int = 8,
) -> list[Written]:
    """Land time-sorted rows in a partition: trimmed, split by period, small files merged.

    Under the partition lock: what other writers landed meanwhile is trimmed away; when a
    period gathers `merge_files` small files (under `merge_rows` rows), they are merged into
    one. All of it is published as one new snapshot.
    """
    if table.num_rows == 0:
        return []
    table = conform(table, dataset.schema, dict(dataset.defaults))
    written = []
    with partition_lock(folder):
        version = open_version(folder, dataset)
        for chunk in split_by_period(trim_covered(table, dataset, version.files), dataset):
            first, last = name_range(chunk, dataset)
            out = version.write(chunk, first, last)
            written.append(Written(out.path, chunk.num_rows, chunk.num_rows))
            period = period_start(first, dataset.period)
            _merge_small_files(dataset, version, period, (merge_rows, merge_files))
        version.publish(grace_seconds)
    return written


def compact_name(file: FileRange) -> str:
    """`file`'s name as a compacted file."""
    name = file.path.name
    return name if name.endswith(COMPACT_SUFFIX) else name[: -len(".parquet")] + COMPACT_SUFFIX
