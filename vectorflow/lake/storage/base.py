"""What the lake asks of a storage: listing, reading, writing and publishing partitions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from vectorflow.lake.files import FileRange
from vectorflow.lake.schema import Dataset


@dataclass(frozen=True)
class Problem:
    """Something wrong in the lake, by path, and what `vectorflow doctor --repair` does."""

    path: str
    what: str
    repair: str


class Version(Protocol):
    """The next state of one partition, built under its lock and published at once.

    `files` is what the new state will hold. Build it with `write`, `remove` and `rename`, then
    `publish`; nothing is visible before, and a writer that dies first leaves nothing a reader
    sees.
    """

    folder: PurePath

    @property
    def files(self) -> list[FileRange]:
        """The files of the state being built, by time."""

    def write(self, table: pa.Table, first: int, last: int, *, compact: bool = False) -> FileRange:
        """A new file of the state (written now, visible once published)."""

    def remove(self, file: FileRange) -> None:
        """Leave `file` out of the state."""

    def rename(self, file: FileRange, name: str) -> FileRange:
        """Keep `file` under another name."""

    def where(self, name: str) -> PurePath:
        """Where the file `name` is once the state is published."""

    def publish(self, grace_seconds: float) -> bool:
        """Make the state visible (if anything changed); False when nothing did."""


class Storage(Protocol):
    """Where the lake is (`root`) and how its files are kept: on disk or in an object store."""

    root: PurePath
    data_dir: Path  # the local data dir: lock files, quarantine

    def files(self, folder: PurePath, dataset: Dataset) -> list[FileRange]:
        """The visible data files of a partition, by time (one consistent listing)."""

    def stored_range(self, folder: PurePath, dataset: Dataset) -> tuple[int, int] | None:
        """(first, last) key time stored in a partition, from file names alone."""

    def recorded_rows(self, folder: PurePath) -> dict[str, int]:
        """Rows per file name as the partition's published state recorded them ({}: unknown)."""

    def write(
        self, table: pa.Table, folder: PurePath, first: int, last: int, *, compact: bool = False
    ) -> PurePath:
        """A new visible file in a folder of a dataset without snapshots (atomic)."""

    def put(self, table: pa.Table, path: PurePath) -> PurePath:
        """Make `path` a file holding `table`, visible whole or not at all."""

    def remove(self, path: PurePath) -> None:
        """Delete one file (gone already: nothing to do)."""

    def exists(self, path: PurePath) -> bool:
        """True when a file or folder is at `path`."""

    def folders(self, base: PurePath, pattern: str) -> list[PurePath]:
        """Folders under `base` matching a relative glob (`*` per level), sorted."""

    def parquet_file(self, path: PurePath) -> pq.ParquetFile:
        """A lake file opened for reading."""

    def parquet_dataset(self, paths: Sequence[PurePath], schema: pa.Schema):
        """A pyarrow dataset over some lake files, in `schema`."""

    def connect(self, database: str = ":memory:", **options) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection that reads this lake's file URLs (`str(path)`)."""

    def rows_source(self, con, paths: Sequence[PurePath], dataset: Dataset) -> str:
        """SQL naming the rows of `paths` (older schemas included) for a query on `con`."""

    def view_sql(self, dataset: Dataset) -> str:
        """The SQL of the catalog view of `dataset` (one row per key)."""

    def schema_file(self, dataset: Dataset) -> PurePath:
        """Where the dataset's empty schema file is (at the depth its view reads)."""

    def usage(self, dataset: Dataset) -> list[tuple[str, int]]:
        """(name, bytes) of the dataset's visible Parquet files."""

    def lock(self, folder: PurePath) -> AbstractContextManager[None]:
        """The partition's write lock (blocking); readers never take it."""

    def open_version(self, folder: PurePath, dataset: Dataset) -> Version:
        """The next state of a partition (call under its lock)."""

    def tidy(self, folder: PurePath, grace_seconds: float) -> list[PurePath]:
        """Remove what the partition's published state superseded long enough ago (locked)."""

    def repair_link(self, folder: PurePath) -> list[str]:
        """Make the partition's published state readable again if it is not; what was done."""

    def repair_links(self, dataset: Dataset) -> list[str]:
        """`repair_link` for every partition of a range dataset; what was done."""

    def layout_problems(self, folder: PurePath) -> list[Problem]:
        """What is wrong with a partition's layout (not its files' contents)."""

    def repair_layout(self, folder: PurePath, grace_seconds: float) -> list[str]:
        """Repair what `layout_problems` finds, never deleting anything unproven; what was done."""

    def quarantine(self, path: PurePath, note: str, *, move: bool) -> Path:
        """A file or folder moved (`move`) or copied out of the lake into
        `<data dir>/quarantine/`, with a note beside it."""


def quarantine_target(data_dir: Path, relative: PurePath) -> Path:
    """A new place in `<data dir>/quarantine/` for something at `relative` in the lake."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = data_dir / "quarantine" / f"{stamp}-{uuid.uuid4().hex[:6]}" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    return target
