"""Checking lake files against their names and their dataset's schema; setting bad ones aside.

Planning trusts file names (that keeps an incremental run's cost flat), so a file whose
contents do not match its name would hide a gap for good. So every file a writer is about to
merge, and every file of a partition a run with `--since` plans over, is checked by its footer
(no data is read): it must open, hold the dataset's columns (an older schema lacks some, never
has others), as many rows as its snapshot recorded, and keys from its name's first time to its
last. A file that fails never counts as data: an unreadable or foreign one is moved to the
quarantine (`<data dir>/quarantine/`, with a note); a readable one is rewritten by what it
holds, split where the dataset's gap rule says a range ends, and a copy kept in the
quarantine. Either way its range shows as missing, and the run fetches it again.
"""

from __future__ import annotations

import calendar
import logging
from datetime import datetime
from pathlib import PurePath

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vectorflow.lake.files import FileRange, partition_values, vanished
from vectorflow.lake.reads import RANGE_END, name_range, read_rows, times_of, trim_covered
from vectorflow.lake.schema import Dataset
from vectorflow.lake.storage import Storage, Version
from vectorflow.timeframes import ms_to_iso

log = logging.getLogger(__name__)

_KINDS = (pa.types.is_timestamp, pa.types.is_integer, pa.types.is_floating, pa.types.is_string)


def schema_problem(schema: pa.Schema, dataset: Dataset) -> str | None:
    """Why a file's schema is not one of `dataset`'s (None: it is, or an older one)."""
    ours = {f.name: f.type for f in dataset.schema}
    foreign = [name for name in schema.names if name not in ours]
    if foreign:
        return f"a foreign schema (columns {', '.join(foreign)} are not in {dataset.name})"
    lacking = [k for k in (*dataset.key, dataset.order_by) if k not in schema.names]
    if lacking:
        return f"a foreign schema (no {', '.join(dict.fromkeys(lacking))} column)"
    for f in schema:
        if f.type != ours[f.name] and not any(k(f.type) and k(ours[f.name]) for k in _KINDS):
            return f"a foreign schema ({f.name} is {f.type}, not {ours[f.name]})"
    return None


def _ms(value) -> int:
    if isinstance(value, datetime):
        return calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000
    return int(value)


def _stats_range(meta: pq.FileMetaData, dataset: Dataset) -> tuple[int, int] | None:
    """[first, last] of the file's keys from its column statistics (None: not recorded)."""
    names = meta.schema.to_arrow_schema().names
    end = RANGE_END.get(dataset.name, dataset.order_by)
    if end not in names:
        return None
    firsts, lasts = [], []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        low = group.column(names.index(dataset.order_by)).statistics
        high = group.column(names.index(end)).statistics
        if low is None or high is None or not (low.has_min_max and high.has_min_max):
            return None
        firsts.append(_ms(low.min))
        lasts.append(_ms(high.max) - (1 if end != dataset.order_by else 0))
    return (min(firsts), max(lasts)) if firsts else None


def file_problem(
    storage: Storage, file: FileRange, dataset: Dataset, recorded_rows: int | None = None
) -> tuple[str | None, bool]:
    """(what is wrong with `file`, whether its rows can be read): (None, True) when nothing.

    A file that went meanwhile (a merge replaced it) is no problem.
    """
    try:
        meta = storage.parquet_file(file.path).metadata
    except Exception as exc:  # noqa: BLE001 - whatever the cause, the file cannot be read
        if vanished(exc):
            return None, True
        return f"unreadable ({str(exc).splitlines()[0][:160]})", False
    foreign = schema_problem(meta.schema.to_arrow_schema(), dataset)
    if foreign:
        return foreign, False
    if recorded_rows is not None and meta.num_rows != recorded_rows:
        return f"holds {meta.num_rows} rows where its snapshot recorded {recorded_rows}", True
    held = _stats_range(meta, dataset) if meta.num_rows else (None, None)
    if held is not None and held != (file.first_ms, file.last_ms):
        span = "no rows" if held[0] is None else f"{ms_to_iso(held[0])} .. {ms_to_iso(held[1])}"
        named = f"{ms_to_iso(file.first_ms)} .. {ms_to_iso(file.last_ms)}"
        return f"holds {span} where its name says {named}", True
    return None, True


def set_aside(storage: Storage, version: Version, file: FileRange, reason: str) -> None:
    """`file` out of the new state, a copy of it in the quarantine with `reason`."""
    kept = storage.quarantine(file.path, reason, move=False)
    version.remove(file)
    log.warning("%s: %s; moved to %s (its range is fetched again by the next run that "
                "covers it)", file.path, reason, kept)  # fmt: skip


def set_aside_unusable(
    storage: Storage, dataset: Dataset, version: Version, files: list[FileRange]
) -> list[FileRange]:
    """The files of `files` that can be read as `dataset` rows; the others set aside."""
    usable = []
    for f in files:
        what, readable = file_problem(storage, f, dataset)
        if readable:
            usable.append(f)
        else:
            set_aside(storage, version, f, str(what))
    return usable


def _runs(rows: pa.Table, dataset: Dataset, gap: int | None) -> list[pa.Table]:
    """Slices of time-sorted rows, cut where the gap rule says a fetched range ended."""
    if gap is None or rows.num_rows < 2:
        return [rows] if rows.num_rows else []
    t = times_of(rows, dataset)
    ends = times_of(rows, dataset, RANGE_END.get(dataset.name))
    cuts = [0, *(np.flatnonzero(t[1:] - ends[:-1] > gap) + 1).tolist(), rows.num_rows]
    return [rows.slice(a, b - a) for a, b in zip(cuts, cuts[1:], strict=False)]


def rewrite_by_contents(
    storage: Storage, dataset: Dataset, version: Version, file: FileRange, reason: str
) -> list[FileRange]:
    """`file`'s rows written again, named by what they hold (split at gaps, rows other files
    hold left out), the file set aside; the new files."""
    rows = read_rows(storage, [file.path], dataset)
    others = [f for f in version.files if f.path != file.path]
    rows = trim_covered(rows, dataset, others)
    gap = dataset.gap_ms(partition_values(dataset, version.folder))
    set_aside(storage, version, file, f"{reason}; rewritten by its contents")
    return [version.write(run, *name_range(run, dataset)) for run in _runs(rows, dataset, gap)]


def repair_files(
    storage: Storage, dataset: Dataset, folder: PurePath, grace_seconds: float
) -> list[str]:
    """Check every file of a partition under its lock, rewrite or set aside the bad ones,
    publish; what was done, by path."""
    done = []
    with storage.lock(folder):
        version = storage.open_version(folder, dataset)
        recorded = storage.recorded_rows(folder)
        for f in version.files:
            what, readable = file_problem(storage, f, dataset, recorded.get(f.path.name))
            if what is None:
                continue
            if readable:
                rewrite_by_contents(storage, dataset, version, f, what)
                done.append(f"{f.path}: {what}; rewritten by its contents, a copy quarantined")
            else:
                set_aside(storage, version, f, what)
                done.append(f"{f.path}: {what}; moved to the quarantine")
        version.publish(grace_seconds)
    return done


def verified_files(
    storage: Storage, dataset: Dataset, folder: PurePath, grace_seconds: float
) -> list[FileRange]:
    """The partition's files, every one checked by its footer; bad ones repaired first."""
    files = storage.files(folder, dataset)
    recorded = storage.recorded_rows(folder)
    if all(file_problem(storage, f, dataset, recorded.get(f.path.name))[0] is None
           for f in files):  # fmt: skip
        return files
    repair_files(storage, dataset, folder, grace_seconds)
    return storage.files(folder, dataset)
