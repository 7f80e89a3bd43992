"""Partition snapshots: published by a symlink swap, flat folders migrated, crashed builds gone."""

from __future__ import annotations

import os

import pyarrow as pa

from vectorflow.lake import store
from vectorflow.lake.catalog import read_view
from vectorflow.lake.files import CURRENT, data_files, stored_range, write_atomic
from vectorflow.lake.schema import CANDLES

HOUR = 3_600_000
OPTIONS = {"merge_rows": 50_000, "grace_seconds": 0.0, "merge_files": 8}


def _table(hours, close: float, ingested: int) -> pa.Table:
    n = len(hours)
    row = {f.name: [None] * n for f in CANDLES.schema}
    row.update(
        exchange=["binance"] * n, market=["spot"] * n, symbol=["BTC/USDT"] * n,
        timeframe=["1h"] * n, open_time=[h * HOUR for h in hours], open=[1.0] * n,
        high=[1.0] * n, low=[1.0] * n, close=[close] * n, volume=[1.0] * n,
        ingested_at=[ingested] * n,
    )  # fmt: skip
    return pa.table(row, schema=CANDLES.schema)


def _folder(lake):
    return lake / "candles/exchange=binance/market=spot/symbol_id=BTCUSDT/timeframe=1h"


def _closes(lake) -> list[tuple[int, float]]:
    frame = read_view(lake, "candles", columns="epoch_ms(open_time) // 3600000 AS h, close")
    return sorted((int(h), float(c)) for h, c in frame.itertuples(index=False))


def test_each_append_publishes_a_snapshot_that_holds_links_to_the_files_kept(tmp_path):
    lake = tmp_path / "lake"
    folder = _folder(lake)
    store.append(CANDLES, folder, _table(range(0, 5), 1.0, 1), **OPTIONS)
    first = os.readlink(folder / CURRENT)
    (kept,) = data_files(folder)
    store.append(CANDLES, folder, _table(range(5, 8), 2.0, 2), **OPTIONS)
    assert os.readlink(folder / CURRENT) != first  # a new snapshot, swapped in
    files = data_files(folder)
    assert [f.path.parent.name for f in files] == [CURRENT, CURRENT]
    assert os.stat(files[0].path).st_ino == os.stat(folder / first / kept.path.name).st_ino
    assert stored_range(folder) == (0, 7 * HOUR)
    assert _closes(lake) == [(h, 1.0) for h in range(5)] + [(h, 2.0) for h in range(5, 8)]


def test_a_flat_folder_of_an_older_version_is_migrated_by_the_first_write(tmp_path):
    lake = tmp_path / "lake"
    folder = _folder(lake)
    write_atomic(_table(range(0, 10), 1.0, 1), folder, 0, 9 * HOUR)
    write_atomic(_table(range(2, 5), 9.0, 2), folder, 2 * HOUR, 4 * HOUR)  # dominated
    write_atomic(_table(range(8, 12), 3.0, 3), folder, 8 * HOUR, 11 * HOUR)  # overlaps, newer
    assert len(data_files(folder)) == 3  # the flat layout is still read as it is
    store.append(CANDLES, folder, _table(range(12, 14), 4.0, 4), **OPTIONS)
    assert not [n for n in os.listdir(folder) if n.endswith(".parquet")]
    ranges = [(f.first_ms // HOUR, f.last_ms // HOUR) for f in data_files(folder)]
    assert ranges == [(0, 11), (12, 13)]  # no dominated or overlapping file in a snapshot
    expected = [(h, 1.0) for h in range(8)] + [(h, 3.0) for h in range(8, 12)]
    assert _closes(lake) == expected + [(12, 4.0), (13, 4.0)]


def test_a_build_that_crashed_before_publishing_is_invisible_and_removed(tmp_path):
    lake = tmp_path / "lake"
    folder = _folder(lake)
    store.append(CANDLES, folder, _table(range(0, 5), 1.0, 1), **OPTIONS)
    crashed = folder / "v00000002"
    write_atomic(_table(range(0, 50), 7.0, 9), crashed, 0, 49 * HOUR)  # never published
    os.symlink("v00000002", folder / f".{CURRENT}.dead")
    assert _closes(lake) == [(h, 1.0) for h in range(5)]
    store.append(CANDLES, folder, _table(range(5, 6), 2.0, 2), **OPTIONS)
    assert _closes(lake) == [(h, 1.0) for h in range(5)] + [(5, 2.0)]
    assert not os.path.lexists(folder / f".{CURRENT}.dead")
    assert {f.path.name for f in data_files(folder)} == set(
        os.listdir(folder / os.readlink(folder / CURRENT))
    )


def test_a_file_merged_away_in_the_append_that_wrote_it_is_not_published(tmp_path):
    """One append writes a small file and merges it with the others at once: the snapshot
    holds the merge alone (a crash trial found the merged file's input left beside it)."""
    lake = tmp_path / "lake"
    folder = _folder(lake)
    options = {**OPTIONS, "merge_files": 3}
    for k in range(3):  # the third append gathers three small files: merged in that append
        store.append(CANDLES, folder, _table(range(10 * k, 10 * k + 10), 1.0, k), **options)
    published = sorted(p.name for p in (folder / CURRENT).iterdir())
    assert len(published) == 1, published
    assert data_files(folder)[0].first_ms == 0 and data_files(folder)[0].last_ms == 29 * HOUR
    assert _closes(lake) == [(h, 1.0) for h in range(30)]  # each hour once
