"""Lake maintenance: compaction of every partition, with each dataset's retention."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.parameters import LAKE_DATASETS, run_form
from flows.reporting import final_state, publish_summary, run_name
from tasks import maintenance
from tasks.candles import refresh_catalog_task
from tasks.executor import TaskExecutor
from vectorflow.config import load_settings
from vectorflow.pipelines.maintenance import check_datasets, compact_job


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
    logger = get_run_logger()
    settings = load_settings(data_dir)
    results = compact_job(settings, check_datasets(datasets), TaskExecutor(maintenance.STEPS))
    refresh_catalog_task(settings)
    changed = [r for r in results if r.detail.get("files_out") or r.detail.get("compacted")]
    logger.info("%d partitions, %d changed", len(results), len(changed))
    publish_summary("compact-lake", results, settings)
    return final_state(results, logger)


run_form(compact_lake, datasets=LAKE_DATASETS)
