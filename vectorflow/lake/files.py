"""Lake paths and atomic Parquet files named by the time range they cover.

A data file is `<first>_<last>_<token>.parquet`, where first and last are the first and last
key times it holds (`20240101T000000123`, milliseconds; files of older versions have whole
seconds) and the token starts with the file's creation time (ms). So a series' stored range is
read from file names alone, without opening any file: the cost of an incremental run does not
grow with the history. A file is written under a temp name in its folder, then `os.replace`d.
Compaction's outputs of finished periods are named `<first>_<last>_<token>.compact.parquet`.

A partition folder of a range dataset holds snapshot directories `v00000001/`, ... and a
symlink `current -> vNNNNNNNN` (see `vectorflow.lake.store.Version`): `data_files` and
`stored_range` read the current snapshot (or, in a folder of the older flat layout that has
no `current` yet, the files directly in it). A lake on object storage has flat partitions
and writes by temp object + server-side copy (`vectorflow.lake.objects`): `data_files` there
leaves out files another one dominates (a merge's inputs until they are deleted).
"""

from __future__ import annotations

import calendar
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from vectorflow.lake.objects import LakePath, fs_of, is_object, list_objects
from vectorflow.lake.schema import Dataset

T = TypeVar("T")

TMP_SUFFIX = ".parquet.tmp"
COMPACT_SUFFIX = ".compact.parquet"
_STAMP = "%Y%m%dT%H%M%S"
_NAME = re.compile(
    r"^(\d{8}T\d{6}(?:\d{3})?)_(\d{8}T\d{6}(?:\d{3})?)_[0-9a-f]{8,32}(\.compact)?\.parquet$"
)
CURRENT = "current"  # the symlink to a partition's published snapshot directory
_VERSION = re.compile(r"^v(\d{8})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: How every lake file is written (`write_atomic`): zstd, and data pages of 20,480 rows instead
#: of pyarrow's default 20,000 (pyarrow 26). DuckDB reads 2,048-row vectors, and a vector
#: that spans two pages of a dictionary-encoded column comes out flat instead of as a dictionary
#: vector, so grouping and filtering handle it row by row: with 20,000-row pages one vector in
#: ten did, and a count per series over compacted files cost 15-30 % more than over the same
#: files in pages of a whole number of vectors (benchmarks/lake_query.py, Q2). Row groups
#: (pyarrow's 1,048,576 rows) are whole numbers of vectors too.
PARQUET_WRITE = {"compression": "zstd", "max_rows_per_page": 10 * 2048}


def safe_component(value: str) -> str:
    """A path component that cannot escape its folder or collide with hive syntax."""
    cleaned = _UNSAFE.sub("_", value)
    if cleaned in ("", ".", ".."):
        raise ValueError(f"unusable path component {value!r}")
    return cleaned


def partition_dir(lake: LakePath, dataset: Dataset, values: dict[str, str]) -> LakePath:
    """The folder of one partition: `candles/exchange=binance/market=spot/symbol_id=BTCUSDT/...`."""
    path = lake / dataset.name
    for key in dataset.partitions:
        path = path / f"{key}={safe_component(values[key])}"
    return path


def _stamp(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime(_STAMP) + f"{millis:03d}"


def _unstamp(text: str) -> int:
    # calendar.timegm on the digits: a planning step parses every name of a partition, and
    # strptime costs ~8 us a call
    fields = (int(text[0:4]), int(text[4:6]), int(text[6:8]))
    clock = (int(text[9:11]), int(text[11:13]), int(text[13:15]))
    return calendar.timegm(fields + clock) * 1000 + int(text[15:] or 0)


@dataclass(frozen=True)
class FileRange:
    """A data file and the first and last key times it covers (ms)."""

    path: Path
    first_ms: int
    last_ms: int
    compact: bool = False  # written by compaction (`*.compact.parquet`)


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


def parse_name(name: str) -> tuple[int, int, bool] | None:
    """(first, last, compact) of a data file's name; None for any other name."""
    match = _NAME.match(name)
    if match is None:
        return None
    return _unstamp(match[1]), _unstamp(match[2]), bool(match[3])


def version_number(name: str) -> int | None:
    """N of a snapshot directory named `vNNNNNNNN` (None for any other name)."""
    match = _VERSION.match(name)
    return int(match[1]) if match else None


def version_name(number: int) -> str:
    """The name of snapshot directory `number`."""
    return f"v{number:08d}"


def snapshot_dir(folder: LakePath) -> LakePath:
    """Where a partition's visible files are: `folder/current` (flat older layout and object
    stores: `folder`).

    The returned path goes through the `current` symlink, so a file opened by it later is the
    one of the then current snapshot (the same file, when it was kept: a kept file is a hard
    link, never rewritten under its name).
    """
    if is_object(folder):
        return folder
    current = folder / CURRENT
    return current if os.path.lexists(current) else folder


def list_names(folder: LakePath) -> list[str]:
    """Names of the entries directly in a folder (FileNotFoundError when there is none)."""
    if is_object(folder):
        return [name for name, _, _ in list_objects(folder)]
    return os.listdir(folder)


def _files_in(folder: Path, names: list[str]) -> list[FileRange]:
    found = []
    for name in names:
        parsed = parse_name(name)
        if parsed:
            found.append(FileRange(folder / name, *parsed))
    return sorted(found, key=lambda f: (f.first_ms, f.last_ms))


def loose_files(folder: Path) -> list[FileRange]:
    """Data files directly in a partition folder (older layout, or written there by hand)."""
    try:
        return [] if is_object(folder) else _files_in(folder, os.listdir(folder))
    except FileNotFoundError:
        return []


def data_files(folder: Path) -> list[FileRange]:
    """The visible data files of a partition with their ranges (temp files are ignored).

    One listing of the current snapshot: a consistent set even while a writer publishes the
    next one.
    """
    where = snapshot_dir(folder)
    try:
        files = _files_in(where, list_names(where))
    except FileNotFoundError:
        return []
    return visible_files(files) if is_object(folder) else files


def object_files(folder: LakePath, listing: list[tuple[str, int, float]]) -> list[FileRange]:
    """Every data file of an object-store partition's listing (`list_objects`), dominated ones
    included (for writers)."""
    return _files_in(folder, [name for name, _, _ in listing])


def stored_range(folder: Path) -> tuple[int, int] | None:
    """(first, last) key time stored in a partition, from file names alone; None when empty.

    Runs on every ingest, and a partition gains a file per run: only the two stamps that matter
    are parsed (digit stamps padded to one width sort as the times they encode), not two per file.
    """
    try:
        names = list_names(snapshot_dir(folder))
    except FileNotFoundError:
        return None
    matches = [m for m in map(_NAME.match, names) if m]
    if not matches:
        return None
    first = min(m[1].ljust(18, "0") for m in matches)
    last = max(m[2].ljust(18, "0") for m in matches)
    return _unstamp(first), _unstamp(last)


def write_atomic(
    table: pa.Table, folder: LakePath, first_ms: int, last_ms: int, *, compact: bool = False
) -> LakePath:
    """Write `table` as a new file covering [first_ms, last_ms]: temp file, fsync, then rename
    (on an object store: temp object, then a server-side copy, `put_object`)."""
    suffix = COMPACT_SUFFIX if compact else ".parquet"
    token = f"{int(time.time() * 1000):013d}{uuid.uuid4().hex[:4]}"  # creation ms + random
    final = folder / f"{_stamp(first_ms)}_{_stamp(last_ms)}_{token}{suffix}"
    if is_object(folder):
        return put_object(table, final)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.stem + TMP_SUFFIX)
    with open(tmp, "wb") as sink:
        pq.write_table(table, sink, **PARQUET_WRITE)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(tmp, final)
    return final


def put_object(table: pa.Table, final: LakePath) -> LakePath:
    """Make `final` an object holding `table`, visible whole or not at all.

    The Parquet bytes are built in memory, uploaded under a temp name (`*.parquet.tmp`: no
    view or listing reads it; an upload cut off is never completed, or leaves a temp object
    the partition's next writer removes), then copied server-side to `final` (a copy is
    atomic) and the temp deleted.
    """
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, **PARQUET_WRITE)
    data = buffer.getvalue()
    fs = fs_of(final)
    # a temp name of its own: two writers of one fixed name (a schema file) never share it
    tmp = final.with_name(f"{final.name[: -len('.parquet')]}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    with fs.open_output_stream(tmp.key) as sink:
        sink.write(data)
    fs.move(tmp.key, final.key)
    return final


def parquet_file(path: LakePath) -> pq.ParquetFile:
    """A Parquet file of the lake, local or in the object store, opened for reading."""
    if is_object(path):
        return pq.ParquetFile(fs_of(path).open_input_file(path.key))
    return pq.ParquetFile(path)


def parquet_dataset(paths: list[LakePath], schema: pa.Schema):
    """A pyarrow dataset over some lake files (local or in the object store) in `schema`."""
    import pyarrow.dataset as ds

    if paths and is_object(paths[0]):
        return ds.dataset([p.key for p in paths], schema=schema, format="parquet",
                          filesystem=fs_of(paths[0]))
    return ds.dataset([str(p) for p in paths], schema=schema, format="parquet")


def schema_file(lake: LakePath, dataset: Dataset) -> LakePath:
    """Where a dataset's empty schema file is: for a range dataset, at the depth its view's
    glob reads (`_schema/.../_schema/current/_schema.parquet`): the glob always matches."""
    if not dataset.complete_ranges:
        return lake / dataset.name / "_schema.parquet"
    levels = ["_schema"] * len(dataset.partitions)
    snapshot = [] if is_object(lake) else [CURRENT]
    return lake.joinpath(dataset.name, *levels, *snapshot, "_schema.parquet")


def write_schema_file(lake: LakePath, dataset: Dataset) -> LakePath:
    """An empty file with the dataset's schema: its view exists, typed, over an empty lake."""
    path = schema_file(lake, dataset)
    if is_object(path):
        if not path.exists():
            put_object(dataset.schema.empty_table(), path)
        return path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"_schema.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
        pq.write_table(dataset.schema.empty_table(), tmp)
        os.replace(tmp, path)
    return path


def vanished(exc: BaseException) -> bool:
    """True when a read failed because a file it listed went before it was opened."""
    return isinstance(exc, FileNotFoundError) or "No such file" in str(exc)


def reading_again(read: Callable[[], T], attempts: int = 3) -> T:
    """`read()` (which lists files, then reads them), run again when a listed file went.

    Merges and compaction publish snapshots without the files they replace while readers run:
    a reader that listed such a file a moment before fails to open it, and a rerun lists anew.
    """
    for attempt in range(attempts):
        try:
            return read()
        except Exception as exc:
            if attempt + 1 == attempts or not vanished(exc):
                raise
    raise AssertionError("unreachable")
