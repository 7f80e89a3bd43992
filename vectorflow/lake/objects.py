"""The lake on object storage: `VECTORFLOW_LAKE_URL=s3://bucket/prefix`.

Objects are read and written through pyarrow's S3 filesystem (`pyarrow.fs.S3FileSystem`),
configured from the standard AWS environment variables: `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`, and
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for an S3-compatible endpoint (MinIO, moto, R2...).
DuckDB reads the same objects through that filesystem too (fsspec's `ArrowFSWrapper`,
registered on each connection the project opens): one S3 client, one set of credentials.

A location in the lake is an `ObjectPath`: a pure POSIX path of `bucket/prefix/...` whose
`str()` is the `s3://` URL, so the lake code joins, names and relates folders exactly as on
disk. Only listing, reading and writing differ, and go through `fs_of`.

**Commit protocol** (what makes a write visible, see `vectorflow.lake.files.write_atomic`): a
data object is uploaded whole under a temp name (`*.parquet.tmp`, which no view or listing
reads), then copied server-side to its final `*.parquet` name and the temp deleted. A copy
is atomic: a reader sees the whole object or none. A writer killed mid-upload leaves an
unfinished multipart upload (never visible) or a temp object that the next writer of the
partition removes. Object stores have no symlink, so a partition is flat (no snapshot
directories): a merge or compaction writes its output before it deletes its inputs, and
the views keep the newest row per key (`vectorflow.lake.catalog.dataset_scan`), so a query
never sees a row twice or misses one while files are replaced.

**Locks.** The writers of a partition are serialised by lock files in the local data dir
(`<data dir>/locks/`), or, when hosts share state (`VECTORFLOW_SHARED_STATE_URL`), by a
PostgreSQL advisory lock per partition, which holds across hosts. Without shared state, two
hosts writing one series at once each land their rows (nothing is lost, the views show each
key once) and the next compaction merges what overlaps.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pyarrow.fs as pafs

SCHEME = "s3://"

_filesystem: pafs.FileSystem | None = None
_options: dict | None = None  # what _filesystem was made with
_lock_dir: Path | None = None
_shared_url: str = ""  # PostgreSQL: partition locks across hosts (vectorflow.resilience.shared)


class ObjectPath(PurePosixPath):
    """`bucket/prefix/...` in the configured object store; `str()` is its `s3://` URL."""

    def __str__(self) -> str:
        return SCHEME + self.as_posix()

    def __fspath__(self) -> str:  # never a local path: os functions fail loudly
        raise TypeError(f"{self} is an object-store location, not a local path")

    def as_posix(self) -> str:
        return super().__str__()

    def relative_to(self, *other) -> PurePosixPath:
        """The part after `other`, a plain relative path (no scheme)."""
        return PurePosixPath(super().relative_to(*other).as_posix())

    @property
    def key(self) -> str:
        """The path as pyarrow's S3 filesystem names it (`bucket/prefix/...`)."""
        return self.as_posix()

    def is_dir(self) -> bool:
        return fs_of(self).get_file_info(self.key).type == pafs.FileType.Directory

    def exists(self) -> bool:
        return fs_of(self).get_file_info(self.key).type != pafs.FileType.NotFound

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a prefix exists once an object is under it."""

    def iterdir(self) -> Iterator[ObjectPath]:
        selector = pafs.FileSelector(self.key, allow_not_found=True)
        for info in fs_of(self).get_file_info(selector):
            yield self / info.base_name

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        """Folders and objects matching a relative pattern, one `*` level at a time."""
        found = [self]
        for part in pattern.split("/"):
            found = [child for f in found for child in f.iterdir()
                     if fnmatch.fnmatchcase(child.name, part)]
        yield from found

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            fs_of(self).delete_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise


LakePath = Path | ObjectPath


def is_object(path: LakePath) -> bool:
    """True for a location in the object store."""
    return isinstance(path, ObjectPath)


def _endpoint(env: dict[str, str]) -> dict:
    url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not url:
        return {}
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"AWS endpoint URL {url!r} is not an http(s)://host[:port] URL")
    return {"endpoint_override": parsed.netloc, "scheme": parsed.scheme}


def parse_lake_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of an `s3://bucket/prefix` URL; ValueError naming a bad one."""
    if not url.startswith(SCHEME):
        raise ValueError(f"lake URL {url!r} is neither a local folder nor s3://bucket/prefix")
    bucket, _, prefix = url[len(SCHEME):].partition("/")
    if not bucket or any(c in bucket for c in " ?#*"):
        raise ValueError(f"lake URL {url!r} names no bucket (expected s3://bucket/prefix)")
    return bucket, prefix.strip("/")


#: The variables that say where the S3 endpoint is (kept with the settings that named the lake);
#: credentials come from the process environment or the standard AWS chain, as for any AWS SDK
LOCATION_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


def location_env(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The endpoint and region variables of `env`."""
    return tuple((k, env[k]) for k in LOCATION_VARIABLES if env.get(k))


def configure(
    url: str, lock_dir: Path, shared_url: str = "", env: dict[str, str] | None = None
) -> ObjectPath:
    """The lake root at `url`, with this process's S3 filesystem set up from `env` (endpoint and
    region; default: the process environment); partition locks in `lock_dir` (this host), or
    in PostgreSQL at `shared_url` (every host)."""
    global _filesystem, _options, _lock_dir, _shared_url
    env = dict(os.environ if env is None else env)
    bucket, prefix = parse_lake_url(url)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    options = {"region": region, **_endpoint(env)}
    if _filesystem is None or _options != options:
        _filesystem, _options = pafs.S3FileSystem(**options), options
    _lock_dir, _shared_url = lock_dir, shared_url
    return ObjectPath(bucket, prefix) if prefix else ObjectPath(bucket)


def fs_of(path: LakePath) -> pafs.FileSystem:
    """The filesystem that holds `path`."""
    if not is_object(path):
        return pafs.LocalFileSystem()
    if _filesystem is None:
        raise RuntimeError(f"{path}: the object store was not configured (VECTORFLOW_LAKE_URL)")
    return _filesystem


def shared_lock_url() -> str:
    """The PostgreSQL URL partition locks are taken in ("" : local lock files)."""
    return _shared_url


def lock_file(folder: ObjectPath) -> Path:
    """The local lock file that serialises this host's writers of an object-store partition."""
    if _lock_dir is None:
        raise RuntimeError(f"{folder}: the object store was not configured (VECTORFLOW_LAKE_URL)")
    digest = hashlib.sha256(folder.key.encode()).hexdigest()[:24]
    _lock_dir.mkdir(parents=True, exist_ok=True)
    return _lock_dir / f"{digest}.lock"


class PositionalFile:
    """An S3 object opened for DuckDB: every read at the calling thread's own position.

    DuckDB reads one Parquet file from several I/O threads through one Python file object,
    as `seek(pos)` then `read(n)`: with a shared cursor another thread's seek lands between
    the two, and a read returns the wrong bytes (decompression errors, or wrong rows). A
    cursor per thread and `read_at` (one ranged GET, as seek + read makes) keep every read
    exact. (Found by benchmarks/lake_s3.py; `tests/lake/test_object_store.py` checks it.)
    """

    def __init__(self, handle) -> None:
        self._handle = handle  # fsspec's ArrowFile
        self._raw = handle.stream  # pyarrow's S3 input file
        self._size = self._raw.size()
        self._local = threading.local()

    def seek(self, loc: int, whence: int = 0) -> int:
        if whence == 1:
            loc += self.tell()
        elif whence == 2:
            loc += self._size
        self._local.pos = loc
        return loc

    def tell(self) -> int:
        return getattr(self._local, "pos", 0)

    def read(self, length: int = -1) -> bytes:
        pos = self.tell()
        if length is None or length < 0:
            length = self._size - pos
        data = self._raw.read_at(length, pos)
        self._local.pos = pos + len(data)
        return data

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def __enter__(self) -> PositionalFile:
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()


@functools.cache
def _duckdb_filesystem_class():
    from fsspec.implementations.arrow import ArrowFSWrapper

    class S3Objects(ArrowFSWrapper):
        """pyarrow's S3 filesystem as fsspec's `s3://`, with `PositionalFile` reads."""

        protocol = ("s3", "s3a")
        root_marker = ""

        def _open(self, path, mode="rb", *args, **kwargs):
            handle = super()._open(path, mode, *args, **kwargs)
            return PositionalFile(handle) if mode == "rb" else handle

    return S3Objects


def register(con) -> None:
    """Let a DuckDB connection read `s3://` paths through the configured filesystem."""
    if _filesystem is None:
        return
    con.register_filesystem(_duckdb_filesystem_class()(_filesystem))


def lake_connection(database: str = ":memory:", **options):
    """A DuckDB connection that reads the lake wherever it is (`s3://` paths included)."""
    import duckdb

    con = duckdb.connect(database, **options)
    register(con)
    return con


def list_objects(folder: LakePath) -> list[tuple[str, int, float]]:
    """(name, size, mtime seconds) of the objects directly in an object-store folder."""
    selector = pafs.FileSelector(folder.key, allow_not_found=True)
    return [
        (i.base_name, i.size or 0, i.mtime.timestamp() if i.mtime else 0.0)
        for i in fs_of(folder).get_file_info(selector)
        if i.type == pafs.FileType.File
    ]
