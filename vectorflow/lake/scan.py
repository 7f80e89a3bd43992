"""The SQL that reads a range dataset: one plain `read_parquet` over the current snapshots.

Each partition folder of a range dataset has a symlink `current` to its published snapshot
directory (`vectorflow.lake.storage.local`), and within a snapshot no file overlaps another
(merges and compaction publish their outputs without their inputs). So the view reads
`<dataset>/<one * per partition level>/current/*.parquet` as it is: no deduplication, no
per-query choice of files. A glob lists each `current` directory at once (a consistent
snapshot per partition), and a file listed before a swap and opened after it is either the
same file (kept files are hard links) or gone, which fails the query with "No such file" so
that it is run again (`vectorflow.lake.catalog.execute_retrying`): a query never sees a row
twice or misses one.

The dataset's empty schema file lies at the same depth (`_schema/.../current/_schema.parquet`,
`vectorflow.lake.files.schema_file`): the glob never matches nothing, and the view is typed
over an empty lake.
"""
from __future__ import annotations

from pathlib import PurePath

from vectorflow.lake.files import CURRENT
from vectorflow.lake.schema import Dataset


def quote(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def snapshot_glob(lake: PurePath, dataset: Dataset) -> str:
    """The glob of every file of every partition's current snapshot (and the schema file)."""
    levels = "/".join("*" for _ in dataset.partitions)
    return f"{lake / dataset.name}/{levels}/{CURRENT}/*.parquet"


def range_dataset_scan(lake: PurePath, dataset: Dataset) -> str:
    """SQL of the view over a range dataset on disk (one row per key)."""
    return (
        f"SELECT {dataset.select_list()} FROM read_parquet("
        f"{quote(snapshot_glob(lake, dataset))}, union_by_name = true, "
        "hive_partitioning = false)"
    )


def deduplicated_scan(lake: PurePath, dataset: Dataset) -> str:
    """SQL reading every file of `dataset`, older schemas included, newest row per key (the
    datasets without snapshots, and every dataset in an object store)."""
    glob = quote(str(lake / dataset.name / "**" / "*.parquet"))
    return (
        f"SELECT {dataset.select_list()} FROM read_parquet({glob}, union_by_name = true, "
        f"hive_partitioning = false) "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(dataset.key)} "
        f"ORDER BY ingested_at DESC) = 1"
    )
