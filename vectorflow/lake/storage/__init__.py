"""Where the lake is and how its files are kept: one `Storage`, chosen when settings load.

`open_storage` is the one place that tells a folder from an object store; everything else
calls the storage it is given (`Settings.storage`): `LocalStorage` (snapshot directories and
a `current` link, `local.py`) or `ObjectStorage` (flat partitions in S3, `objects.py`).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from vectorflow.lake.storage.base import Problem, Storage, Version
from vectorflow.lake.storage.local import LocalStorage
from vectorflow.lake.storage.objects import ObjectStorage
from vectorflow.lake.storage.s3 import ObjectPath, object_root, s3_options

LakePath = PurePath  # a `Path` on disk, an `ObjectPath` in an object store


def open_storage(
    url: str, data_dir: Path, *, shared_url: str = "", env: dict[str, str] | None = None
) -> Storage:
    """The storage of the lake at `url`: "" is `<data dir>/lake`, a folder, or
    `s3://bucket/prefix` (reached through the endpoint and region of `env`, default the process
    environment; partition locks in PostgreSQL at `shared_url` when hosts share state).
    ValueError names a bad URL."""
    if "://" in url:  # an object store: s3://bucket/prefix (object_root refuses any other URL)
        env = dict(os.environ if env is None else env)
        return ObjectStorage(object_root(url), data_dir, s3_options(env), shared_url)
    root = Path(url).expanduser().resolve() if url else data_dir / "lake"
    return LocalStorage(root, data_dir)


__all__ = ["LakePath", "LocalStorage", "ObjectPath", "ObjectStorage", "Problem", "Storage",
           "Version", "open_storage"]  # fmt: skip
