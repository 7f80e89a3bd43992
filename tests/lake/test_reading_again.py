"""Readers list files, then open them: a file compaction renamed in between is listed anew."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vectorflow.lake.files import reading_again


def test_a_file_renamed_between_listing_and_reading_is_read_under_its_new_name(tmp_path):
    old = tmp_path / "a.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), old)
    lists = []

    def read():
        listed = sorted(tmp_path.glob("*.parquet"))
        lists.append([p.name for p in listed])
        if len(lists) == 1:  # compaction renames the file after this reader listed it
            old.rename(tmp_path / "a.compact.parquet")
        return sum(pq.read_table(p).num_rows for p in listed)

    assert reading_again(read) == 3
    assert lists == [["a.parquet"], ["a.compact.parquet"]]


def test_other_errors_are_not_retried(tmp_path):
    calls = []

    def read():
        calls.append(1)
        raise ValueError("bad value")

    with pytest.raises(ValueError):
        reading_again(read)
    assert len(calls) == 1
