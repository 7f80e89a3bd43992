"""Partition snapshots: published by a symlink swap, with a manifest; crashed builds gone."""

from __future__ import annotations

import os

from tests.lake.helpers import candles
from vectorflow.lake import store
from vectorflow.lake.catalog import read_view
from vectorflow.lake.files import CURRENT, MANIFEST, new_file_name
from vectorflow.lake.schema import CANDLES
from vectorflow.lake.storage import LocalStorage

HOUR = 3_600_000
OPTIONS = {"merge_rows": 50_000, "grace_seconds": 0.0, "merge_files": 8}


def _folder(lake: LocalStorage):
    return lake.root / "candles/exchange=binance/market=spot/symbol_id=BTCUSDT/timeframe=1h"


def _lake(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "lake", tmp_path)


def _closes(lake: LocalStorage) -> list[tuple[int, float]]:
    frame = read_view(lake, "candles", columns="epoch_ms(open_time) // 3600000 AS h, close")
    return sorted((int(h), float(c)) for h, c in frame.itertuples(index=False))


def test_each_append_publishes_a_snapshot_that_holds_links_to_the_files_kept(tmp_path):
    lake = _lake(tmp_path)
    folder = _folder(lake)
    store.append(lake, CANDLES, folder, candles(range(0, 5), 1.0, 1), **OPTIONS)
    first = os.readlink(folder / CURRENT)
    (kept,) = lake.files(folder, CANDLES)
    store.append(lake, CANDLES, folder, candles(range(5, 8), 2.0, 2), **OPTIONS)
    assert os.readlink(folder / CURRENT) != first  # a new snapshot, swapped in
    files = lake.files(folder, CANDLES)
    assert [f.path.parent.name for f in files] == [CURRENT, CURRENT]
    assert os.stat(files[0].path).st_ino == os.stat(folder / first / kept.path.name).st_ino
    assert lake.stored_range(folder, CANDLES) == (0, 7 * HOUR)
    rows = {f.path.name: n for f, n in zip(files, (5, 3), strict=True)}
    assert lake.recorded_rows(folder) == rows
    names = [MANIFEST, *(f.path.name for f in files)]
    assert sorted(os.listdir(folder / CURRENT)) == sorted(names)
    assert _closes(lake) == [(h, 1.0) for h in range(5)] + [(h, 2.0) for h in range(5, 8)]


def test_a_build_that_crashed_before_publishing_is_invisible_and_removed(tmp_path):
    lake = _lake(tmp_path)
    folder = _folder(lake)
    store.append(lake, CANDLES, folder, candles(range(0, 5), 1.0, 1), **OPTIONS)
    for crashed in (folder / "v00000002", folder / ".build-v00000003"):  # never published
        lake.put(candles(range(0, 50), 7.0, 9), crashed / new_file_name(0, 49 * HOUR))
    os.symlink("v00000002", folder / f".{CURRENT}.dead")
    assert _closes(lake) == [(h, 1.0) for h in range(5)]
    store.append(lake, CANDLES, folder, candles(range(5, 6), 2.0, 2), **OPTIONS)
    assert _closes(lake) == [(h, 1.0) for h in range(5)] + [(5, 2.0)]
    assert not os.path.lexists(folder / f".{CURRENT}.dead")
    assert not os.path.lexists(folder / ".build-v00000003")
    assert {f.path.name for f in lake.files(folder, CANDLES)} | {MANIFEST} == set(
        os.listdir(folder / os.readlink(folder / CURRENT))
    )


def test_files_put_in_a_partition_folder_by_hand_are_never_read(tmp_path):
    lake = _lake(tmp_path)
    folder = _folder(lake)
    store.append(lake, CANDLES, folder, candles(range(0, 5), 1.0, 1), **OPTIONS)
    lake.put(candles(range(0, 10), 9.0, 9), folder / new_file_name(0, 9 * HOUR))  # loose
    store.append(lake, CANDLES, folder, candles(range(5, 6), 2.0, 2), **OPTIONS)
    assert _closes(lake) == [(h, 1.0) for h in range(5)] + [(5, 2.0)]
    assert lake.stored_range(folder, CANDLES) == (0, 5 * HOUR)


def test_a_file_merged_away_in_the_append_that_wrote_it_is_not_published(tmp_path):
    """One append writes a small file and merges it with the others at once: the snapshot
    holds the merge alone (a crash trial found the merged file's input left beside it)."""
    lake = _lake(tmp_path)
    folder = _folder(lake)
    options = {**OPTIONS, "merge_files": 3}
    for k in range(3):  # the third append gathers three small files: merged in that append
        store.append(lake, CANDLES, folder, candles(range(10 * k, 10 * k + 10), 1.0, k), **options)
    published = sorted(p.name for p in (folder / CURRENT).iterdir() if p.name != MANIFEST)
    assert len(published) == 1, published
    files = lake.files(folder, CANDLES)
    assert files[0].first_ms == 0 and files[0].last_ms == 29 * HOUR
    assert _closes(lake) == [(h, 1.0) for h in range(30)]  # each hour once
