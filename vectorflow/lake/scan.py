"""The SQL that reads a range dataset: deduplicate only where files overlap, known from names.

Three parts, all over the dataset's folder:

1. compacted files (`*.compact.parquet`): they never overlap, so they are read as they are;
2. the other files that no file dominates (`vectorflow.lake.store.dominator`) and that overlap
   no other such file: read as they are too;
3. the rest (files that overlap, e.g. two runs that wrote one range before locks existed, or a
   copied file): deduplicated on the key, the newest `ingested_at` winning.

Which file is where is decided per query from `glob()` (file names, no file opened). A query
lists its files twice (`read_parquet` when planned, `glob()` when run), so a file takes over
from the files it dominates only `SETTLE_MS` after it was written (its name says when): a
query never skips a file for a newer one it did not list. Until then both are read and
deduplicated. Compacted files appear by renaming a settled file that alone holds its rows,
so whichever name a query lists, it reads those rows once (or, if the rename happened between
its listing and its read, fails with "Cannot open file" and can be run again).

A glob pattern, not a filter, separates compacted files from the rest (`*[0-9a-f].parquet`
ends in the token of an ordinary file), so no part opens the other's files. With nothing left
to deduplicate, the view costs about a plain `read_parquet` of the same files
(benchmarks/lake_query.py).
"""

from __future__ import annotations

from pathlib import Path

from vectorflow.lake.files import COMPACT_SUFFIX
from vectorflow.lake.schema import Dataset

COMPACT_SCHEMA_FILE = "_schema" + COMPACT_SUFFIX  # keeps the compacted glob from being empty
_STAMP = r"(\d{8}T\d{6}(?:\d{3})?)"
_NAME = rf"{_STAMP}_{_STAMP}_([0-9a-f]{{8,32}})(\.compact)?\.parquet$"
#: A file dominates others only once it is this old: longer than any query takes between
#: listing its files (read_parquet, at bind) and listing their names (glob, at execution).
SETTLE_MS = 2000


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def range_dataset_scan(lake: Path, dataset: Dataset) -> str:
    """SQL of the view over a range dataset (one row per key)."""
    root = str(lake / dataset.name)
    columns = dataset.select_list()
    key = ", ".join(f'"{k}"' for k in dataset.key)
    every = _quote(f"{root}/**/*.parquet")
    compacted = _quote(f"{root}/**/*{COMPACT_SUFFIX}")
    ordinary = _quote(f"{root}/**/*[0-9a-f].parquet")
    options = "union_by_name = true, hive_partitioning = false"
    return f"""
WITH vf_names AS (
    SELECT file, regexp_extract(file, '^(.*)/[^/]*$', 1) AS dir,
           regexp_extract(file, '{_NAME}', ['lo', 'hi', 'token', 'compact']) AS r
    FROM glob({every})
), vf_files AS (
    SELECT file, dir, rpad(r.lo, 18, '0') AS lo, rpad(r.hi, 18, '0') AS hi,
           r.compact <> '' AS compact,
           length(r.token) <> 17 OR TRY_CAST(substr(r.token, 1, 13) AS BIGINT)
               <= epoch_ms(now()) - {SETTLE_MS} AS settled
    FROM vf_names WHERE r.lo <> ''
), vf_ranked AS (  -- in this order, a file's dominators come before it
    SELECT *, max(CASE WHEN settled THEN hi END) OVER (
                  PARTITION BY dir ORDER BY lo, hi DESC, compact DESC, file DESC
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
    FROM vf_files
), vf_visible AS (
    SELECT file, dir, lo, hi FROM vf_ranked
    WHERE NOT compact AND (reach IS NULL OR reach < hi)
), vf_flags AS MATERIALIZED (  -- computed once, read by both parts below
    SELECT file,
           coalesce(lo <= max(hi) OVER (PARTITION BY dir ORDER BY lo, hi, file
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false)
           OR coalesce(hi >= min(lo) OVER (PARTITION BY dir ORDER BY lo, hi, file
                    ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), false) AS overlapping
    FROM vf_visible
)
SELECT {columns} FROM read_parquet({compacted}, {options})
UNION ALL
SELECT {columns} FROM read_parquet({ordinary}, {options}, filename = true)
WHERE filename IN (SELECT file FROM vf_flags WHERE NOT overlapping)
UNION ALL
SELECT {columns} FROM (
    SELECT {columns} FROM read_parquet({ordinary}, {options}, filename = true)
    WHERE filename IN (SELECT file FROM vf_flags WHERE overlapping)
    QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ingested_at DESC) = 1
)"""
