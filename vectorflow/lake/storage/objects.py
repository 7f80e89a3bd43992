"""The lake on object storage (`VECTORFLOW_LAKE_URL=s3://bucket/prefix`).

**Commit protocol.** A data object is uploaded whole under a temp name (`*.parquet.tmp`, which
no view or listing reads), then copied server-side to its final `*.parquet` name and the temp
deleted. A copy is atomic: a reader sees the whole object or none. A writer killed mid-upload
leaves an unfinished multipart upload (never visible) or a temp object that the partition's
next writer removes. Object stores have no symlink, so a partition is flat (no snapshots): a
merge or compaction writes its output before it deletes its inputs, the views keep the newest
row per key, and readers of files leave dominated files out (`files`), so a query never sees a
row twice or misses one while files are replaced.

**Locks.** The writers of a partition are serialised by lock files in the local data dir
(`<data dir>/locks/`), or, when hosts share state (`VECTORFLOW_SHARED_STATE_URL`), by a
PostgreSQL advisory lock per partition, which holds across hosts. Without shared state, two
hosts writing one series at once each land their rows (nothing is lost, the views show each
key once) and the next compaction merges what overlaps.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from vectorflow.lake.files import (
    PARQUET_WRITE,
    TMP_SUFFIX,
    FileRange,
    files_in,
    names_range,
    new_file_name,
    parse_name,
    visible_files,
)
from vectorflow.lake.locks import file_lock
from vectorflow.lake.reads import conform
from vectorflow.lake.scan import deduplicated_scan
from vectorflow.lake.schema import Dataset
from vectorflow.lake.storage.base import Problem, quarantine_target
from vectorflow.lake.storage.s3 import ObjectPath, register

STRAY_TEMP_SECONDS = 3600  # a temp object this old is a crashed writer's leftover


class ObjectVersion:
    """The next state of an object-store partition, built under its lock.

    A write is visible when its object is: outputs are written before their inputs are
    deleted (at `publish`); readers keep the newest row per key (views) or leave dominated
    files out (`ObjectStorage.files`), so they never see a row twice or miss one.
    """

    def __init__(self, storage: ObjectStorage, folder: ObjectPath) -> None:
        self.storage, self.folder = storage, folder
        listing = storage.listing(folder)  # one listing: the files, and crashed writers' temps
        self._files = {f.path.name: f for f in files_in(folder, (n for n, _, _ in listing))}
        self._written: set[str] = set()
        self._gone: list[FileRange] = []
        self.changed = False
        now = time.time()
        for name, _, mtime in listing:
            if name.endswith(TMP_SUFFIX) and now - mtime > STRAY_TEMP_SECONDS:
                storage.remove(folder / name)

    @property
    def files(self) -> list[FileRange]:
        """Every data file of the partition (dominated ones included), by time."""
        return sorted(self._files.values(), key=lambda f: (f.first_ms, f.last_ms))

    def where(self, name: str) -> ObjectPath:
        """Where the file `name` is: the partition is flat."""
        return self.folder / name

    def write(self, table: pa.Table, first: int, last: int, *, compact: bool = False) -> FileRange:
        """A new object, visible at once (its rows are also in files `publish` deletes)."""
        path = self.storage.write(table, self.folder, first, last, compact=compact)
        self._files[path.name] = FileRange(path, first, last, compact)
        self._written.add(path.name)
        self.changed = True
        return self._files[path.name]

    def remove(self, file: FileRange) -> None:
        """Leave `file` out: deleted at once if this writer wrote it, else at `publish`."""
        del self._files[file.path.name]
        if file.path.name in self._written:  # written by this writer: its rows are elsewhere
            self.storage.remove(file.path)
        else:
            self._gone.append(file)
        self.changed = True

    def rename(self, file: FileRange, name: str) -> FileRange:
        """A server-side copy under `name`; the old object goes at `publish`."""
        new = self.folder / name
        self.storage.fs.copy_file(file.path.key, new.key)
        self.remove(file)
        self._files[name] = FileRange(new, *parse_name(name))
        return self._files[name]

    def publish(self, grace_seconds: float) -> bool:
        """Delete the files the new state leaves out (their rows are in its outputs)."""
        if not self.changed:
            return False
        for f in self._gone:
            self.storage.remove(f.path)
        self._gone, self._written, self.changed = [], set(), False
        return True


@dataclass(frozen=True)
class ObjectStorage:
    """A lake in an S3 bucket (`root`); locks and the quarantine in the local data dir.

    Pickles without its client (Dask workers, Prefect): the filesystem is made on first use
    from `options` (endpoint and region, `vectorflow.lake.storage.s3.s3_options`).
    """

    root: ObjectPath
    data_dir: Path
    options: tuple[tuple[str, str], ...]
    shared_url: str = ""  # PostgreSQL: partition locks across hosts

    @functools.cached_property
    def fs(self) -> pafs.S3FileSystem:
        """The S3 client (one per storage)."""
        return pafs.S3FileSystem(**dict(self.options))

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "fs"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def listing(self, folder: ObjectPath) -> list[tuple[str, int, float]]:
        """(name, size, mtime seconds) of the objects directly in a folder."""
        selector = pafs.FileSelector(folder.key, allow_not_found=True)
        return [
            (i.base_name, i.size or 0, i.mtime.timestamp() if i.mtime else 0.0)
            for i in self.fs.get_file_info(selector)
            if i.type == pafs.FileType.File
        ]

    def files(self, folder: ObjectPath, dataset: Dataset) -> list[FileRange]:
        """The partition's files no other file dominates (a merge's inputs until deleted)."""
        return visible_files(files_in(folder, (n for n, _, _ in self.listing(folder))))

    def stored_range(self, folder: ObjectPath, dataset: Dataset) -> tuple[int, int] | None:
        """(first, last) key time of a partition, from its object names alone."""
        return names_range(n for n, _, _ in self.listing(folder))

    def recorded_rows(self, folder: ObjectPath) -> dict[str, int]:
        """Nothing is recorded beside the objects."""
        return {}

    def write(
        self, table: pa.Table, folder: ObjectPath, first: int, last: int, *, compact: bool = False
    ) -> ObjectPath:
        """A new visible object (temp object, then a server-side copy)."""
        return self.put(table, folder / new_file_name(first, last, compact=compact))

    def put(self, table: pa.Table, path: ObjectPath) -> ObjectPath:
        """Make `path` an object holding `table`, visible whole or not at all.

        The Parquet bytes are built in memory, uploaded under a temp name of its own (two
        writers of one fixed name, a schema file, never share it), then copied server-side.
        """
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, **PARQUET_WRITE)
        stem = path.name[: -len(".parquet")]
        tmp = path.with_name(f"{stem}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
        with self.fs.open_output_stream(tmp.key) as sink:
            sink.write(buffer.getvalue())
        self.fs.move(tmp.key, path.key)
        return path

    def remove(self, path: ObjectPath) -> None:
        """Delete one object (gone already: nothing to do)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(path.key)

    def exists(self, path: ObjectPath) -> bool:
        """True when an object or a prefix is at `path`."""
        return self.fs.get_file_info(path.key).type != pafs.FileType.NotFound

    def _children(self, folder: ObjectPath) -> Iterator[tuple[ObjectPath, bool]]:
        selector = pafs.FileSelector(folder.key, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            yield folder / info.base_name, info.type == pafs.FileType.Directory

    def folders(self, base: ObjectPath, pattern: str) -> list[ObjectPath]:
        """Prefixes under `base` matching a relative glob, one `*` level at a time."""
        found = [base]
        for part in pattern.split("/"):
            found = [child for f in found for child, is_dir in self._children(f)
                     if is_dir and fnmatch.fnmatchcase(child.name, part)]  # fmt: skip
        return sorted(found)

    def parquet_file(self, path: ObjectPath) -> pq.ParquetFile:
        """An object opened for reading."""
        return pq.ParquetFile(self.fs.open_input_file(path.key))

    def parquet_dataset(self, paths: Sequence[ObjectPath], schema: pa.Schema):
        """A pyarrow dataset over some objects."""
        import pyarrow.dataset as ds

        keys = [p.key for p in paths]
        return ds.dataset(keys, schema=schema, format="parquet", filesystem=self.fs)

    def connect(self, database: str = ":memory:", **options) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection that reads `s3://` URLs through this storage's client."""
        con = duckdb.connect(database, **options)
        register(con, self.fs)
        return con

    def rows_source(self, con, paths: Sequence[ObjectPath], dataset: Dataset) -> str:
        """The objects read whole by pyarrow (one GET each) and registered on `con`: DuckDB's
        fsspec bridge would ask for each one's metadata a dozen times (benchmarks/lake_s3.py)."""
        defaults = dict(dataset.defaults)
        whole = [conform(self.parquet_file(p).read(), dataset.schema, defaults) for p in paths]
        con.register("stored_rows", pa.concat_tables(whole))
        return "stored_rows"

    def view_sql(self, dataset: Dataset) -> str:
        """Every dataset's view keeps the newest row per key (no snapshots to read)."""
        return deduplicated_scan(self.root, dataset)

    def schema_file(self, dataset: Dataset) -> ObjectPath:
        """At the depth the view's glob reads (flat partitions: no `current`)."""
        if not dataset.complete_ranges:
            return self.root / dataset.name / "_schema.parquet"
        levels = ["_schema"] * len(dataset.partitions)
        return self.root.joinpath(dataset.name, *levels, "_schema.parquet")

    def usage(self, dataset: Dataset) -> list[tuple[str, int]]:
        """(name, bytes) of every Parquet object of the dataset."""
        root = self.root / dataset.name
        selector = pafs.FileSelector(root.key, recursive=True, allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        return [(i.base_name, i.size or 0) for i in infos if i.base_name.endswith(".parquet")]

    @contextlib.contextmanager
    def lock(self, folder: ObjectPath) -> Iterator[None]:
        """A PostgreSQL advisory lock when hosts share state (every host), else a lock file in
        the local data dir (this host)."""
        if self.shared_url:
            from vectorflow.resilience.shared import advisory_lock

            with advisory_lock(self.shared_url, f"lake partition {folder}"):
                yield
            return
        digest = hashlib.sha256(folder.key.encode()).hexdigest()[:24]
        with file_lock(self.data_dir / "locks" / f"{digest}.lock"):
            yield

    def open_version(self, folder: ObjectPath, dataset: Dataset) -> ObjectVersion:
        """The next state of a partition (call under its lock)."""
        return ObjectVersion(self, folder)

    def tidy(self, folder: ObjectPath, grace_seconds: float) -> list[ObjectPath]:
        """Nothing superseded is kept in a flat partition."""
        return []

    def repair_link(self, folder: ObjectPath) -> list[str]:
        """No link to repair."""
        return []

    def repair_links(self, dataset: Dataset) -> list[str]:
        """No links to repair (and no listing spent finding that out)."""
        return []

    def layout_problems(self, folder: ObjectPath) -> list[Problem]:
        """A flat partition has no layout to get wrong (stray temps go with the next write)."""
        return []

    def repair_layout(self, folder: ObjectPath, grace_seconds: float) -> list[str]:
        """Nothing to repair."""
        return []

    def quarantine(self, path: ObjectPath, note: str, *, move: bool) -> Path:
        """The object copied into the local quarantine (and deleted when `move`)."""
        target = quarantine_target(self.data_dir, path.relative_to(self.root))
        with self.fs.open_input_stream(path.key) as source:
            target.write_bytes(source.read())
        target.with_name(target.name + ".note.txt").write_text(f"{path}\n{note}\n")
        if move:
            self.remove(path)
        return target
