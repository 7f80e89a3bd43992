"""Lake maintenance tasks: compaction (with retention) and pruning."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from vectorflow.lake.compact import compact_partition
from vectorflow.lake.schema import DATASETS
from vectorflow.settings import Settings


@task(name="compact-partition", cache_policy=NO_CACHE, task_run_name="compact-{partition}")
def compact_partition_task(dataset: str, partition: str, settings: Settings) -> dict:
    """Compact one partition folder (relative to the lake) and apply its dataset's retention."""
    report = compact_partition(DATASETS[dataset], settings.storage.root / partition, settings)
    if report.files_out or report.deleted:
        get_run_logger().info(
            "%s: %d files -> %d, %d deleted",
            partition,
            report.files_in,
            report.files_out,
            report.deleted,
        )
    return report.as_row()
