"""Helpers of the lake tests: rows published into a partition as given."""

from __future__ import annotations

from pathlib import PurePath

import pyarrow as pa

from vectorflow.lake import store
from vectorflow.lake.schema import Dataset
from vectorflow.lake.storage import Storage


def publish_as_is(
    storage: Storage, dataset: Dataset, folder: PurePath, table: pa.Table, first: int, last: int
) -> None:
    """`table` published as one file of the partition, as given (an older schema stays one);
    files it overlaps are merged with it, the newest row per key winning (a rewrite)."""
    with storage.lock(folder):
        version = storage.open_version(folder, dataset)
        version.write(table, first, last)
        overlapped = [f for f in version.files if f.first_ms <= last and f.last_ms >= first]
        if len(overlapped) > 1:
            store.merge_group(storage, dataset, version, overlapped)
        version.publish(0.0)
