"""Lake maintenance tasks: compaction (with retention) of one partition."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.candles import log_result
from vectorflow.pipelines.maintenance import compact_one
from vectorflow.settings import Settings
from vectorflow.units import UnitResult


@task(name="compact-partition", cache_policy=NO_CACHE, task_run_name="compact-{partition}")
def compact_partition_task(dataset: str, partition: str, settings: Settings) -> UnitResult:
    """Compact one partition folder (relative to the lake) and apply its dataset's retention."""
    return log_result(compact_one(dataset, partition, settings))


STEPS = {compact_one: compact_partition_task}
