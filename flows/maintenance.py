"""Lake maintenance: compaction of every partition, with each dataset's retention."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.parameters import LAKE_DATASETS, run_form
from flows.reporting import artifact_family, run_name
from tasks.candles import refresh_catalog_task
from tasks.maintenance import compact_partition_task
from vectorflow.errors import InvalidInput
from vectorflow.lake.compact import partition_folders, range_datasets
from vectorflow.settings import load_settings


@flow(
    name="compact-lake",
    flow_run_name=run_name("compact", "datasets"),
    task_runner=ThreadPoolTaskRunner(max_workers=2),
    timeout_seconds=3600,
)
def compact_lake(datasets: list[str] | None = None, data_dir: str | None = None) -> list[dict]:
    """One deduplicated, sorted file per partition and period; rows past retention removed.

    Safe while ingest runs: each partition is rewritten under its write lock and published as
    one new snapshot (outputs without their inputs); superseded snapshots stay for running
    queries for the grace period.

    Args:
        datasets: Datasets to compact. Empty: every dataset.
        data_dir: For Python callers only (a deployment's runs use VECTORFLOW_DATA_DIR).
    """
    settings = load_settings(data_dir)
    chosen = [ds for ds in range_datasets() if not datasets or ds.name in datasets]
    unknown = sorted(set(datasets or []) - {ds.name for ds in chosen})
    if unknown:
        names = ", ".join(ds.name for ds in range_datasets())
        raise InvalidInput(f"unknown dataset {', '.join(unknown)}; expected one of {names}")
    futures = [
        compact_partition_task.submit(ds.name, str(folder.relative_to(settings.lake_dir)), settings)
        for ds in chosen
        for folder in partition_folders(settings.lake_dir, ds)
    ]
    rows = [f.result() for f in futures]
    refresh_catalog_task(settings)
    changed = [r for r in rows if r["files_out"] or r["compacted"] or r["deleted"]]
    get_run_logger().info("%d partitions, %d changed", len(rows), len(changed))
    create_table_artifact(
        table=changed or [{"partitions": len(rows), "changed": 0}],
        key=f"{artifact_family('compact-lake')}-partitions",
        description="Files in and out, rows written and files deleted per partition",
    )
    return rows


run_form(compact_lake, datasets=LAKE_DATASETS)
