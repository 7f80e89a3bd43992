"""Appending to a partition of a range dataset, and the rules that keep its views cheap and exact.

A *range dataset* (`Dataset.complete_ranges`) has files that each hold every key of their
partition between their first and last time, as named. That makes three things possible from
file names alone:

- **Coverage**: what was fetched is the union of the file ranges (plus the ranges the exchange
  confirmed empty, in `coverage_ranges`), so an incremental run plans without opening a file.
- **Superseded files**: a file whose range lies inside another's holds nothing the other lacks.
  When a period gathers `merge_files` small files (one per run), ingest merges them into one;
  compaction merges each period's files and renames the result `*.compact.parquet` once the
  period is over. The merged file *dominates* its inputs: once it has settled (`SETTLE_MS`)
  the views read it instead of them, and a later write deletes them after the grace period.
- **Cheap views**: compacted files never overlap one another and are read without
  deduplication; the other files are read if no settled file dominates them, deduplicated on
  the key only where two of them overlap (`vectorflow.lake.scan`).

Writers of one partition are serialised by a lock file in it (`fcntl.flock`, one host), and
trim what another writer landed meanwhile, so two runs of one series never write overlapping
files.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vectorflow.lake.files import TMP_SUFFIX, FileRange, created_ms, data_files, write_atomic
from vectorflow.lake.scan import SETTLE_MS
from vectorflow.lake.schema import Dataset
from vectorflow.timeframes import timeframe_ms

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
STRAY_TEMP_SECONDS = 3600  # a temp file this old is a crashed writer's leftover
FUNDING_GAP_MS = 8 * 3_600_000  # the longest funding interval: a shorter hole is no gap


@contextlib.contextmanager
def partition_lock(folder: Path) -> Iterator[None]:
    """Hold the partition's write lock (blocking); readers never take it."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a+b") as handle:
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


def dominator(file: FileRange, others: list[FileRange]) -> FileRange | None:
    """A file whose range holds `file`'s (it then holds all its rows), or None.

    Compacted files are never dominated; of two files with one range the larger name wins.
    """
    if file.compact:
        return None
    for other in others:
        if other.path == file.path or other.first_ms > file.first_ms:
            continue
        if file.last_ms > other.last_ms:
            continue
        same = (other.first_ms, other.last_ms) == (file.first_ms, file.last_ms)
        if other.compact or not same or other.path.name > file.path.name:
            return other
    return None


def visible_files(files: list[FileRange]) -> list[FileRange]:
    """The files the views read: every file no other file dominates."""
    return [f for f in files if dominator(f, files) is None]


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


def read_rows(paths: list[Path], dataset: Dataset) -> pa.Table:
    """The rows of some files, one per key (newest `ingested_at`), sorted by time then key."""
    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    key = ", ".join(f'"{k}"' for k in dataset.key)
    con = duckdb.connect()
    try:
        table = con.sql(
            f"SELECT * FROM read_parquet([{files}], union_by_name = true, "
            "hive_partitioning = false) "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ingested_at DESC) = 1 "
            f'ORDER BY "{dataset.order_by}", {key}'
        ).to_arrow_table()
    finally:
        con.close()
    return conform(table, dataset.schema, dict(dataset.defaults))


def merge_group(
    dataset: Dataset, folder: Path, group: list[FileRange], *, compact: bool = False
) -> Written:
    """One file holding a group's rows; it dominates the group (its range holds theirs)."""
    rows = read_rows([f.path for f in group], dataset)
    first, last = name_range(rows, dataset)
    path = write_atomic(rows, folder, first, last, compact=compact)
    return Written(path, rows.num_rows, 0)


def _merge_small_files(
    dataset: Dataset, folder: Path, files: list[FileRange], period: int, limits: tuple[int, int]
) -> list[Written]:
    """When a period holds `merge_files` small files, merge each contiguous run of them."""
    merge_rows, merge_files = limits
    if merge_files < 2:
        return []
    small = [
        f
        for f in visible_files(files)
        if not f.compact and period_start(f.first_ms, dataset.period) == period
    ]
    if len(small) < merge_files:
        return []
    small = [f for f in small if pq.read_metadata(f.path).num_rows < merge_rows]
    if len(small) < merge_files:
        return []
    gap = adjacency_ms(dataset, partition_values(dataset, folder))
    groups = [g for g in contiguous_groups(small, gap) if len(g) > 1]
    return [merge_group(dataset, folder, g) for g in groups]


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
    one, and the files superseded (older than the grace period) are deleted.
    """
    if table.num_rows == 0:
        return []
    table = conform(table, dataset.schema, dict(dataset.defaults))
    written = []
    with partition_lock(folder):
        files = data_files(folder)
        for chunk in split_by_period(trim_covered(table, dataset, files), dataset):
            first, last = name_range(chunk, dataset)
            path = write_atomic(chunk, folder, first, last)
            written.append(Written(path, chunk.num_rows, chunk.num_rows))
            files.append(FileRange(path, first, last))
            period = period_start(first, dataset.period)
            if _merge_small_files(dataset, folder, files, period, (merge_rows, merge_files)):
                files = data_files(folder)
        collect_garbage(folder, grace_seconds, files)
    return written


def age_seconds(file: FileRange) -> float:
    """Seconds since a file was written (its name; the file's mtime for older names)."""
    created = created_ms(file.path)
    stamp = created / 1000 if created is not None else os.stat(file.path).st_mtime
    return time.time() - stamp


def settled(file: FileRange) -> bool:
    """True when the views let `file` stand for the files it dominates (`scan.SETTLE_MS`)."""
    return age_seconds(file) * 1000 > SETTLE_MS


def effective_grace(grace_seconds: float) -> float:
    """The configured grace, but at least twice the settling time (seconds)."""
    return max(grace_seconds, 2 * SETTLE_MS / 1000)


def collect_garbage(
    folder: Path, grace_seconds: float, files: list[FileRange] | None = None
) -> list[Path]:
    """Delete superseded files whose dominator was written more than the grace period ago.

    The grace is at least twice the settling time, so no view still reads a superseded file
    when it goes. Call under the partition lock. Stray temp files of crashed writers go too.
    """
    files = data_files(folder) if files is None else files
    now = time.time()
    grace = effective_grace(grace_seconds)
    deleted = []
    for f in files:
        over = dominator(f, files)
        if over is None:
            continue
        try:
            if age_seconds(over) < grace:
                continue
            os.unlink(f.path)
            deleted.append(f.path)
        except FileNotFoundError:
            continue
    for name in os.listdir(folder):
        if name.endswith(TMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                if now - os.stat(folder / name).st_mtime > STRAY_TEMP_SECONDS:
                    os.unlink(folder / name)
    if deleted:
        log.debug("deleted %d superseded files in %s", len(deleted), folder)
    return deleted
