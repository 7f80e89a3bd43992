"""Lake paths and data files named by the time range they cover (names only: no I/O here).

A data file is `<first>_<last>_<token>.parquet`, where first and last are the first and last
key times it holds (`20240101T000000123`, milliseconds; files of older versions have whole
seconds) and the token starts with the file's creation time (ms). So a series' stored range is
read from file names alone, without opening any file: the cost of an incremental run does not
grow with the history. Compaction's outputs of finished periods are named
`<first>_<last>_<token>.compact.parquet`. How files are listed, written and published is the
storage's business (`vectorflow.lake.storage`).
"""

from __future__ import annotations

import calendar
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePath
from typing import TypeVar

from vectorflow.lake.schema import Dataset

T = TypeVar("T")

TMP_SUFFIX = ".parquet.tmp"
COMPACT_SUFFIX = ".compact.parquet"
_STAMP = "%Y%m%dT%H%M%S"
_NAME = re.compile(
    r"^(\d{8}T\d{6}(?:\d{3})?)_(\d{8}T\d{6}(?:\d{3})?)_[0-9a-f]{8,32}(\.compact)?\.parquet$"
)
CURRENT = "current"  # the symlink to a partition's published snapshot directory
MANIFEST = "_manifest.json"  # written last inside a snapshot directory: it is complete
_VERSION = re.compile(r"^v(\d{8})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: How every lake file is written: zstd, and data pages of 20,480 rows instead of pyarrow's
#: default 20,000 (pyarrow 26). DuckDB reads 2,048-row vectors, and a vector that spans two
#: pages of a dictionary-encoded column comes out flat instead of as a dictionary vector, so
#: grouping and filtering handle it row by row: with 20,000-row pages one vector in ten did,
#: and a count per series over compacted files cost 15-30 % more than over the same files in
#: pages of a whole number of vectors (benchmarks/lake_query.py, Q2). Row groups (pyarrow's
#: 1,048,576 rows) are whole numbers of vectors too.
PARQUET_WRITE = {"compression": "zstd", "max_rows_per_page": 10 * 2048}


def safe_component(value: str) -> str:
    """A path component that cannot escape its folder or collide with hive syntax."""
    cleaned = _UNSAFE.sub("_", value)
    if cleaned in ("", ".", ".."):
        raise ValueError(f"unusable path component {value!r}")
    return cleaned


def symbol_id(symbol: str) -> str:
    """The partition name of a unified symbol: BTC/USDT and BTC/USDT:USDT → BTCUSDT."""
    return symbol.split(":")[0].replace("/", "")


def partition_dir(lake: PurePath, dataset: Dataset, values: dict[str, str]) -> PurePath:
    """The folder of one partition: `candles/exchange=binance/market=spot/symbol_id=BTCUSDT/...`."""
    path = lake / dataset.name
    for key in dataset.partitions:
        path = path / f"{key}={safe_component(values[key])}"
    return path


def partition_pattern(dataset: Dataset, match: dict[str, str | None] | None = None) -> str:
    """The glob of a dataset's partition folders (under its folder), optionally only those with
    the given partition values."""
    match = match or {}
    return "/".join(f"{k}={match[k]}" if match.get(k) else f"{k}=*" for k in dataset.partitions)


def partition_values(dataset: Dataset, folder: PurePath) -> dict[str, str]:
    """The partition values encoded in a folder path (`exchange=binance/...`)."""
    parts = dict(p.split("=", 1) for p in folder.parts if "=" in p)
    return {key: parts[key] for key in dataset.partitions if key in parts}


def _stamp(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime(_STAMP) + f"{millis:03d}"


def _unstamp(text: str) -> int:
    # calendar.timegm on the digits: a planning step parses every name of a partition, and
    # strptime costs ~8 us a call
    fields = (int(text[0:4]), int(text[4:6]), int(text[6:8]))
    clock = (int(text[9:11]), int(text[11:13]), int(text[13:15]))
    return calendar.timegm(fields + clock) * 1000 + int(text[15:] or 0)


def new_file_name(first_ms: int, last_ms: int, *, compact: bool = False) -> str:
    """A fresh name for a file covering [first_ms, last_ms] (its token: creation ms + random)."""
    suffix = COMPACT_SUFFIX if compact else ".parquet"
    token = f"{int(time.time() * 1000):013d}{uuid.uuid4().hex[:4]}"
    return f"{_stamp(first_ms)}_{_stamp(last_ms)}_{token}{suffix}"


@dataclass(frozen=True)
class FileRange:
    """A data file and the first and last key times it covers (ms)."""

    path: PurePath
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


def files_in(folder: PurePath, names: Iterable[str]) -> list[FileRange]:
    """The data files among `names` (entries of `folder`), by time; other names are ignored."""
    found = []
    for name in names:
        parsed = parse_name(name)
        if parsed:
            found.append(FileRange(folder / name, *parsed))
    return sorted(found, key=lambda f: (f.first_ms, f.last_ms))


def names_range(names: Iterable[str]) -> tuple[int, int] | None:
    """(first, last) key time of the data files among `names`; None when there is none.

    Runs on every ingest, and a partition gains a file per run: only the two stamps that matter
    are parsed (digit stamps padded to one width sort as the times they encode), not two per file.
    """
    matches = [m for m in map(_NAME.match, names) if m]
    if not matches:
        return None
    first = min(m[1].ljust(18, "0") for m in matches)
    last = max(m[2].ljust(18, "0") for m in matches)
    return _unstamp(first), _unstamp(last)


def version_number(name: str) -> int | None:
    """N of a snapshot directory named `vNNNNNNNN` (None for any other name)."""
    match = _VERSION.match(name)
    return int(match[1]) if match else None


def version_name(number: int) -> str:
    """The name of snapshot directory `number`."""
    return f"v{number:08d}"


def compact_name(file: FileRange) -> str:
    """`file`'s name as a compacted file."""
    name = file.path.name
    return name if name.endswith(COMPACT_SUFFIX) else name[: -len(".parquet")] + COMPACT_SUFFIX


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
