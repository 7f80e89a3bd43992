"""S3 plumbing of the object-store lake: locations, the pyarrow filesystem, DuckDB reads.

Objects are read and written through pyarrow's S3 filesystem (`pyarrow.fs.S3FileSystem`),
configured from the standard AWS environment variables: `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`, and
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for an S3-compatible endpoint (MinIO, moto, R2...).
DuckDB reads the same objects through that filesystem too (fsspec's `ArrowFSWrapper`,
registered on each connection the storage opens): one S3 client, one set of credentials.

A location in the lake is an `ObjectPath`: a pure POSIX path of `bucket/prefix/...` whose
`str()` is the `s3://` URL, so the lake code joins, names and relates folders exactly as on
disk. Listing, reading and writing go through the storage (`vectorflow.lake.storage.objects`).
"""

from __future__ import annotations

import functools
import threading
from pathlib import PurePosixPath
from urllib.parse import urlparse

import pyarrow.fs as pafs

from vectorflow.settings.lake import SCHEME, check_lake_url


class ObjectPath(PurePosixPath):
    """`bucket/prefix/...` in an object store; `str()` is its `s3://` URL."""

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


def _endpoint(env: dict[str, str]) -> dict:
    url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not url:
        return {}
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"AWS endpoint URL {url!r} is not an http(s)://host[:port] URL")
    return {"endpoint_override": parsed.netloc, "scheme": parsed.scheme}


def parse_lake_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of an `s3://bucket/prefix` URL; ValueError naming a bad one (the
    settings' own check, `vectorflow.settings.lake.check_lake_url`)."""
    url = check_lake_url(url)
    if not url.startswith(SCHEME):
        raise ValueError(f"lake URL {url!r} is a local folder, not s3://bucket/prefix")
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    return bucket, prefix.strip("/")


def s3_options(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Keyword arguments of `pyarrow.fs.S3FileSystem` from the endpoint and region of `env`
    (the settings' environment); credentials come from the process environment or the
    standard AWS chain, as for any AWS SDK."""
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    return tuple({"region": region, **_endpoint(env)}.items())


def object_root(url: str) -> ObjectPath:
    """The lake root an `s3://bucket/prefix` URL names."""
    bucket, prefix = parse_lake_url(url)
    return ObjectPath(bucket, prefix) if prefix else ObjectPath(bucket)


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


def register(con, filesystem: pafs.FileSystem) -> None:
    """Let a DuckDB connection read `s3://` paths through `filesystem`."""
    con.register_filesystem(_duckdb_filesystem_class()(filesystem))
