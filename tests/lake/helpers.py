"""Helpers of the lake tests: rows published as given, rows read back, lakes copied."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePath

import pyarrow as pa

from vectorflow.lake import store
from vectorflow.lake.schema import CANDLES, Dataset
from vectorflow.lake.storage import Storage

HOUR = 3_600_000


def candles(hours, close: float, ingested: int) -> pa.Table:
    """binance spot BTC/USDT 1h candles at these hours since 1970, all at one price."""
    n = len(hours)
    row = {f.name: [None] * n for f in CANDLES.schema}
    row.update(
        exchange=["binance"] * n, market=["spot"] * n, symbol=["BTC/USDT"] * n,
        timeframe=["1h"] * n, open_time=[h * HOUR for h in hours], open=[1.0] * n,
        high=[1.0] * n, low=[1.0] * n, close=[close] * n, volume=[1.0] * n,
        ingested_at=[ingested] * n,
    )  # fmt: skip
    return pa.table(row, schema=CANDLES.schema)


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


def candle_rows(data_dir: Path) -> list[tuple]:
    """Every candle as users see it (the catalog's view, read-only), `ingested_at` left out."""
    from tests.conftest import query_catalog

    return query_catalog(
        data_dir, "SELECT * EXCLUDE (ingested_at) FROM candles ORDER BY ALL"
    )


def copy_without_symlinks(source: Path, target: Path) -> None:
    """A copy as `rsync -r` without `-l` makes one: symlinks are skipped ("skipping
    non-regular file"), hard links become separate files."""

    def symlinks(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if os.path.islink(os.path.join(folder, n))]

    shutil.copytree(source, target, ignore=symlinks)
