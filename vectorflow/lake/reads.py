"""Reading lake rows: tables conformed to a dataset's pinned schema, newest row per key."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from vectorflow.lake.files import FileRange
from vectorflow.lake.schema import Dataset

if TYPE_CHECKING:
    from vectorflow.lake.storage import Storage

#: Datasets whose rows span a range: a file is named up to its last row's end (exclusive - 1 ms)
RANGE_END = {"coverage_ranges": "range_end"}


def conform(table: pa.Table, schema: pa.Schema, defaults: dict | None = None) -> pa.Table:
    """`table` in `schema`: columns in order, missing ones (older files) as nulls or defaults."""
    arrays = []
    for f in schema:
        if f.name in table.column_names:
            column = table.column(f.name).cast(f.type)
        else:
            column = pa.nulls(table.num_rows, f.type)
        if defaults and f.name in defaults:
            column = column.fill_null(pa.scalar(defaults[f.name], f.type))
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


def times_of(table: pa.Table, dataset: Dataset, column: str | None = None) -> np.ndarray:
    """The `order_by` (or `column`) times of a table as int64 ms."""
    values = table.column(column or dataset.order_by)
    return values.cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy()


def name_range(table: pa.Table, dataset: Dataset) -> tuple[int, int]:
    """The [first, last] a file holding `table` (time-sorted) is named by."""
    t = times_of(table, dataset)
    end = RANGE_END.get(dataset.name)
    last = int(times_of(table, dataset, end).max()) - 1 if end else int(t[-1])
    return int(t[0]), last


def trim_covered(table: pa.Table, dataset: Dataset, files: list[FileRange]) -> pa.Table:
    """Drop rows whose time lies inside a file already there (another writer landed them)."""
    if not files or table.num_rows == 0:
        return table
    t = times_of(table, dataset)
    inside = np.zeros(len(t), dtype=bool)
    for f in files:
        if f.first_ms <= t[-1] and f.last_ms >= t[0]:
            inside |= (t >= f.first_ms) & (t <= f.last_ms)
    return table.filter(pa.array(~inside)) if inside.any() else table


def read_rows(storage: Storage, paths: Sequence[PurePath], dataset: Dataset) -> pa.Table:
    """The rows of some files, one per key (newest `ingested_at`), sorted by time then key."""
    key = ", ".join(f'"{k}"' for k in dataset.key)
    con = storage.connect()
    try:
        source = storage.rows_source(con, paths, dataset)
        table = con.sql(
            f"SELECT * FROM {source} "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ingested_at DESC) = 1 "
            f'ORDER BY "{dataset.order_by}", {key}'
        ).to_arrow_table()
    finally:
        con.close()
    return conform(table, dataset.schema, dict(dataset.defaults))
