"""The lake on disk: a range dataset's partition is a chain of snapshots and a `current` link.

A writer, under the partition's lock (a file in it, `fcntl.flock`, one host), builds the next
snapshot (`SnapshotVersion`): hard links to the files that stay, its new files (temp name +
rename), its manifest last; then renames the build to `vNNNNNNNN` and publishes it by
`os.replace` of a temp symlink over `current` (rename(2) is atomic). A snapshot is never
changed once published, and within one no file overlaps another: a merge publishes its output
*without* its inputs. So the views read `*/current/*.parquet` as it is (`vectorflow.lake.scan`)
and a query sees each row once: a directory is listed at once, and a file listed in one
snapshot and opened after the swap is the same file (a hard link) or gone ("No such file": the
query is run again, `vectorflow.lake.files.reading_again`). Superseded snapshots are removed
by a later writer once superseded for the grace period; see `snapshots` for recovery.
Datasets without ranges (playbooks, backtests) are flat folders of files.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from vectorflow.lake.files import (
    CURRENT,
    PARQUET_WRITE,
    TMP_SUFFIX,
    FileRange,
    files_in,
    names_range,
    new_file_name,
    parse_name,
    partition_pattern,
    version_name,
    version_number,
)
from vectorflow.lake.locks import file_lock
from vectorflow.lake.scan import deduplicated_scan, quote, range_dataset_scan
from vectorflow.lake.schema import Dataset
from vectorflow.lake.storage import layout
from vectorflow.lake.storage.base import Problem
from vectorflow.lake.storage.snapshots import (
    BUILD_PREFIX,
    Quarantine,
    fsync_dir,
    linked_number,
    point_current,
    read_manifest,
    readable_snapshot,
    recover,
    remove_crashed,
    remove_superseded,
    snapshot_numbers,
    write_manifest,
)
from vectorflow.quarantine import set_aside

LOCK_NAME = ".lock"


def write_parquet(table: pa.Table, path: Path) -> Path:
    """Write `table` at `path`: temp file in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name[: -len('.parquet')]}.{uuid.uuid4().hex[:6]}{TMP_SUFFIX}")
    with open(tmp, "wb") as sink:
        pq.write_table(table, sink, **PARQUET_WRITE)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(tmp, path)
    return path


class SnapshotVersion:
    """The next snapshot of a partition on disk (see the module docstring).

    `files` is what it will hold: paths of files one can read now (in the published snapshot,
    or written into the build). Nothing is visible before `publish`, and a writer that dies
    first leaves a `.build-*` directory the next writer removes.
    """

    def __init__(self, folder: Path, quarantine: Quarantine) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        state = recover(folder, quarantine)
        remove_crashed(folder, state)
        self.number = state.number
        self._next = max(snapshot_numbers(folder), default=0) + 1
        self.dir = folder / f"{BUILD_PREFIX}{version_name(self._next)}"
        self._names: dict[str, Path] = {}  # name in the new snapshot -> the file to link
        self._entries: dict[str, tuple[int, int] | None] = {}  # name -> (rows, bytes)
        if self.number:
            base = folder / version_name(self.number)
            recorded = read_manifest(base) or {}
            for f in files_in(base, os.listdir(base)):
                self._names[f.path.name] = f.path
                self._entries[f.path.name] = recorded.get(f.path.name)
        self.changed = False

    @property
    def files(self) -> list[FileRange]:
        """The files of the snapshot being built, by time."""
        found = [FileRange(path, *parse_name(name)) for name, path in self._names.items()]
        return sorted(found, key=lambda f: (f.first_ms, f.last_ms))

    def unmeasured(self) -> list[FileRange]:
        """The files whose rows no manifest recorded (kept from a snapshot without one)."""
        return [f for f in self.files if self._entries[f.path.name] is None]

    def drop(self, names: list[str]) -> None:
        """Leave the files of these names out of the snapshot."""
        for f in self.files:
            if f.path.name in names:
                self.remove(f)

    def where(self, name: str) -> Path:
        """Where the file `name` is once this snapshot is published."""
        return self.folder / version_name(self._next) / name

    def _name_of(self, file: FileRange) -> str:
        return next(n for n, p in self._names.items() if p == file.path)

    def write(self, table: pa.Table, first: int, last: int, *, compact: bool = False) -> FileRange:
        """A new file of the snapshot (written now, visible once published)."""
        path = write_parquet(table, self.dir / new_file_name(first, last, compact=compact))
        self._names[path.name] = path
        self._entries[path.name] = (table.num_rows, os.stat(path).st_size)
        self.changed = True
        return FileRange(path, first, last, compact)

    def remove(self, file: FileRange) -> None:
        """Leave `file` out of the snapshot (a file written for it is deleted at once)."""
        name = self._name_of(file)
        del self._names[name], self._entries[name]
        if file.path.parent == self.dir:
            os.unlink(file.path)
        self.changed = True

    def rename(self, file: FileRange, name: str) -> FileRange:
        """Keep `file` under another name (its link in the new snapshot gets that name)."""
        old = self._name_of(file)
        path = self._names.pop(old)
        self._entries[name] = self._entries.pop(old)
        if path.parent == self.dir:  # written for this snapshot: the file itself is renamed
            os.rename(path, path.with_name(name))
            path = path.with_name(name)
        self._names[name] = path
        self.changed = True
        return FileRange(path, *parse_name(name))

    def _assemble(self) -> None:
        """The build directory holding exactly the snapshot's files, and its manifest."""
        files = self.files
        for a, b in zip(files, files[1:], strict=False):
            if b.first_ms <= a.last_ms:  # the invariant the views rely on: never publish it
                raise RuntimeError(f"snapshot of {self.folder} would overlap: {a.path} {b.path}")
        self.dir.mkdir(exist_ok=True)
        for name, path in self._names.items():
            if path != self.dir / name:
                os.link(path, self.dir / name)
        for stray in set(os.listdir(self.dir)) - set(self._names):
            os.unlink(self.dir / stray)  # written for this snapshot, then merged away
        for name, entry in self._entries.items():  # None: kept from a snapshot without one
            if entry is None:
                path = self.dir / name
                self._entries[name] = (pq.read_metadata(path).num_rows, os.stat(path).st_size)
        write_manifest(self.dir, self._next, self._entries)
        fsync_dir(self.dir)

    def publish(self, grace_seconds: float) -> bool:
        """Make the snapshot current (if anything changed); False when nothing did.

        Assembles the build, renames it to its snapshot name, swaps `current` to it and removes
        the snapshots superseded for longer than the grace.
        """
        if not self.changed:
            return False
        self._assemble()
        os.rename(self.dir, self.folder / version_name(self._next))
        point_current(self.folder, self._next)
        self.number, self._next = self._next, self._next + 1
        self._names = {n: self.folder / version_name(self.number) / n for n in self._names}
        self.dir = self.folder / f"{BUILD_PREFIX}{version_name(self._next)}"
        self.changed = False
        remove_superseded(self.folder, grace_seconds)
        return True


@dataclass(frozen=True)
class LocalStorage:
    """A lake in a local folder (`root`), with the data dir's quarantine."""

    root: Path
    data_dir: Path

    def _snapshot_names(self, folder: Path, dataset: Dataset) -> tuple[Path, list[str]]:
        """Where a partition's visible files are, and the names there."""
        where = folder / CURRENT if dataset.complete_ranges else folder
        try:
            return where, os.listdir(where)
        except (FileNotFoundError, NotADirectoryError):
            if not dataset.complete_ranges:
                return where, []
        snapshot = readable_snapshot(folder)  # `current` missing or dangling: never 0 rows
        return (snapshot, os.listdir(snapshot)) if snapshot else (where, [])

    def files(self, folder: Path, dataset: Dataset) -> list[FileRange]:
        """The visible data files of a partition: one listing of its published snapshot."""
        return files_in(*self._snapshot_names(folder, dataset))

    def stored_range(self, folder: Path, dataset: Dataset) -> tuple[int, int] | None:
        """(first, last) key time of a partition, from its file names alone."""
        return names_range(self._snapshot_names(folder, dataset)[1])

    def recorded_rows(self, folder: Path) -> dict[str, int]:
        """Rows per file of the published snapshot, as its manifest recorded them."""
        manifest = read_manifest(folder / CURRENT) or {}
        return {name: rows for name, (rows, _) in manifest.items()}

    def write(
        self, table: pa.Table, folder: Path, first: int, last: int, *, compact: bool = False
    ) -> Path:
        """A new visible file in a flat folder (a dataset without snapshots)."""
        return write_parquet(table, folder / new_file_name(first, last, compact=compact))

    def put(self, table: pa.Table, path: Path) -> Path:
        """Make `path` a file holding `table` (temp file, then rename)."""
        return write_parquet(table, path)

    def remove(self, path: Path) -> None:
        """Delete one file."""
        path.unlink(missing_ok=True)

    def exists(self, path: Path) -> bool:
        """True when something is at `path`."""
        return os.path.lexists(path)

    def folders(self, base: Path, pattern: str) -> list[Path]:
        """Folders under `base` matching a relative glob, sorted."""
        return sorted(p for p in base.glob(pattern) if p.is_dir()) if base.is_dir() else []

    def parquet_file(self, path: Path) -> pq.ParquetFile:
        """A lake file opened for reading."""
        return pq.ParquetFile(path)

    def parquet_dataset(self, paths: Sequence[Path], schema: pa.Schema):
        """A pyarrow dataset over some lake files."""
        import pyarrow.dataset as ds

        return ds.dataset([str(p) for p in paths], schema=schema, format="parquet")

    def connect(self, database: str = ":memory:", **options) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection (local paths need nothing more)."""
        return duckdb.connect(database, **options)

    def rows_source(self, con, paths: Sequence[Path], dataset: Dataset) -> str:
        """`read_parquet` of the files, older schemas included."""
        files = ", ".join(quote(str(p)) for p in paths)
        return f"read_parquet([{files}], union_by_name = true, hive_partitioning = false)"

    def view_sql(self, dataset: Dataset) -> str:
        """Range datasets: the published snapshots as they are; others: newest row per key."""
        if dataset.complete_ranges:
            return range_dataset_scan(self.root, dataset)
        return deduplicated_scan(self.root, dataset)

    def schema_file(self, dataset: Dataset) -> Path:
        """At the depth the view's glob reads (`_schema/.../_schema/current/_schema.parquet`)."""
        if not dataset.complete_ranges:
            return self.root / dataset.name / "_schema.parquet"
        levels = ["_schema"] * len(dataset.partitions)
        return self.root.joinpath(dataset.name, *levels, CURRENT, "_schema.parquet")

    def usage(self, dataset: Dataset) -> list[tuple[str, int]]:
        """(name, bytes) of the dataset's Parquet files; of a partition, its snapshot only."""
        found = []
        for folder, dirs, names in os.walk(self.root / dataset.name):
            if CURRENT in dirs + names or any(version_number(d) is not None for d in dirs):
                # a partition: its published snapshot only
                dirs[:] = []
                where, snapshot = self._snapshot_names(Path(folder), dataset)
                found += [where / n for n in snapshot if n.endswith(".parquet")]
            else:
                found += [Path(folder) / n for n in names if n.endswith(".parquet")]
        return [(p.name, p.stat().st_size) for p in found if p.exists()]

    def lock(self, folder: Path) -> AbstractContextManager[None]:
        """The lock file in the partition folder."""
        return file_lock(folder / LOCK_NAME)

    def open_version(self, folder: Path, dataset: Dataset) -> SnapshotVersion:
        """The next snapshot of a partition (call under its lock)."""
        return SnapshotVersion(folder, self._move_to_quarantine)

    def tidy(self, folder: Path, grace_seconds: float) -> list[Path]:
        """Remove snapshots superseded longer than the grace ago (call under the lock)."""
        return remove_superseded(folder, grace_seconds)

    def repair_link(self, folder: Path) -> list[str]:
        """Link `current` again to the newest complete snapshot if it is not a valid link."""
        if linked_number(folder) is not None or not snapshot_numbers(folder):
            return []
        with self.lock(folder):
            return recover(folder, self._move_to_quarantine).notes

    def repair_links(self, dataset: Dataset) -> list[str]:
        """`repair_link` for every partition of a range dataset (a readlink each)."""
        pattern = partition_pattern(dataset)
        return [n for f in self.folders(self.root / dataset.name, pattern)
                for n in self.repair_link(f)]  # fmt: skip

    def layout_problems(self, folder: Path) -> list[Problem]:
        """The link, manifest, loose entries and unfinished builds of a partition."""
        return layout.problems(folder)

    def repair_layout(self, folder: Path, grace_seconds: float) -> list[str]:
        """Relink `current`, quarantine loose entries and files put into the snapshot by hand,
        remove unfinished builds, rewrite the manifest; what was done."""
        done = self.repair_link(folder)
        with self.lock(folder):
            for name in layout.loose_entries(folder):
                self.quarantine(folder / name, "not part of any snapshot", move=True)
                done.append(f"moved {folder / name} to the quarantine")
            done += [f"removed {folder / n} (never published)" for n in layout.unpublished(folder)]
            version = SnapshotVersion(folder, self._move_to_quarantine)
            if version.number:
                snapshot = folder / version_name(version.number)
                strangers = layout.strangers(snapshot)
                for name in strangers:
                    self.quarantine(snapshot / name, "not in the snapshot's manifest", move=False)
                    done.append(f"moved {snapshot / name} to the quarantine")
                version.drop(strangers)
                done += self._set_aside_unmeasurable(version)
                if strangers or layout.manifest_problems(snapshot):
                    version.changed = True
                    done.append(f"published {folder} again with a manifest of its files")
            version.publish(grace_seconds)
        return done

    def _set_aside_unmeasurable(self, version: SnapshotVersion) -> list[str]:
        """Files of a snapshot without a manifest whose footer does not read: quarantined."""
        done = []
        for f in version.unmeasured():
            try:
                pq.read_metadata(f.path)
            except Exception as exc:  # noqa: BLE001 - unreadable, whatever the cause
                self.quarantine(f.path, f"unreadable ({exc})", move=False)
                version.remove(f)
                done.append(f"moved {f.path} (unreadable) to the quarantine")
        return done

    def _move_to_quarantine(self, path: Path, note: str) -> Path:
        return self.quarantine(path, note, move=True)

    def quarantine(self, path: Path, note: str, *, move: bool) -> Path:
        """`path` moved (or, for a file still published, linked) into the quarantine."""
        return set_aside(self.data_dir, path, path.relative_to(self.root), note, move=move)
