"""Backfill of long candle histories, with its progress in the Prefect UI.

The progress artifact (`backfill-progress`) follows the share of the expected candles landed;
stopping the run and starting it again resumes after what landed.
"""

from __future__ import annotations

import threading
import time

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.reporting import final_state, publish_summary, run_name
from flows.runners import unit_task_runner
from tasks import backfill, candles, signals
from tasks.executor import TaskExecutor
from vectorflow.errors import InvalidInput
from vectorflow.pipelines.backfill import Snapshot, backfill_job
from vectorflow.pipelines.candles import plan_ingest
from vectorflow.settings import load_settings

ARTIFACT_EVERY_S = 2.0  # progress artifact updates at most this often


class _ArtifactUpdater:
    """A progress listener keeping the run's progress artifact current, throttled."""

    def __init__(self) -> None:
        self.artifact_id, self.last = None, 0.0
        self.lock = threading.Lock()

    def __call__(self, snap: Snapshot) -> None:
        with self.lock:
            final = snap.series_done == snap.series_total
            if not final and time.monotonic() - self.last < ARTIFACT_EVERY_S:
                return
            self.last = time.monotonic()
            percent, text = round(snap.fraction * 100, 1), _describe(snap)
            if self.artifact_id is None:
                self.artifact_id = create_progress_artifact(
                    percent, key="backfill-progress", description=text
                )
            else:
                update_progress_artifact(self.artifact_id, percent, text)


def _describe(snap: Snapshot) -> str:
    eta = f", about {snap.eta_seconds:.0f} s left" if snap.eta_seconds is not None else ""
    return (
        f"{snap.series_done}/{snap.series_total} series, {snap.pages} pages, "
        f"{snap.candles:,}/{snap.candles_expected:,} candles{eta}"
    )


@flow(
    name="backfill-candles",
    flow_run_name=run_name("backfill", "exchanges", "timeframes", "since"),
    task_runner=unit_task_runner(),
)  # no timeout: a long history takes what it takes, and a stopped run resumes
def backfill_candles(
    since: str,
    exchanges: list[str] | None = None,  # None: the settings file's [series]
    markets: list[str] | None = None,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    until: str | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """Closed candles from since (required) to until, resuming after what already landed."""
    if not since:
        raise InvalidInput("backfill needs since (e.g. 2024-01-01)")
    logger = get_run_logger()
    settings = load_settings(data_dir)
    plan = plan_ingest(
        **settings.series.pick(exchanges, markets, symbols, timeframes), since=since, until=until
    )
    logger.info("%d series from %s", len(plan.units), since)
    executor = TaskExecutor(candles.STEPS, backfill.STEPS, signals.STEPS)
    results = backfill_job(settings, plan, executor, [_ArtifactUpdater()])
    candles.refresh_catalog_task(settings)
    publish_summary("backfill-candles", results, settings)
    return final_state(results, logger)
