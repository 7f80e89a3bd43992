"""Backfill of long candle histories, with its progress in the Prefect UI.

The progress artifact (`backfill-progress`) follows the share of the expected candle slots
answered: landed, or confirmed empty by the exchange (before a listing), so a finished backfill
stands at 100 %. Stopping the run and starting it again resumes after what landed.
"""

from __future__ import annotations

import threading
import time

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.parameters import run_form
from flows.reporting import artifact_family, final_state, publish_summary, run_name
from flows.runners import unit_task_runner
from tasks import backfill, candles, signals
from tasks.executor import TaskExecutor
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput
from vectorflow.pipelines.backfill import Snapshot, backfill_job
from vectorflow.pipelines.candles import plan_ingest

ARTIFACT_EVERY_S = 2.0  # progress artifact updates at most this often


class _ArtifactUpdater:
    """A progress listener keeping the run's progress artifact current, throttled."""

    def __init__(self, key: str) -> None:
        self.key, self.artifact_id, self.last = key, None, 0.0
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
                    percent, key=self.key, description=text
                )
            else:
                update_progress_artifact(self.artifact_id, percent, text)


def _describe(snap: Snapshot) -> str:
    eta = f", about {snap.eta_seconds:.0f} s left" if snap.eta_seconds is not None else ""
    return (
        f"{snap.series_done}/{snap.series_total} series, {snap.pages} pages, "
        f"{snap.candles:,} candles landed, {snap.covered:,} of {snap.candles_expected:,} "
        f"candle slots answered (empty ones count){eta}"
    )


@flow(
    name="backfill-candles",
    flow_run_name=run_name("backfill", "exchanges", "timeframes", "since"),
    task_runner=unit_task_runner(),
)  # no timeout: a long history takes what it takes, and a stopped run resumes
def backfill_candles(
    since: str,
    exchanges: list[str] | None = None,
    markets: list[str] | None = None,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    until: str | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """A long candle history, resuming after what already landed; progress in its artifact.

    Args:
        since: First candle open time, UTC (e.g. 2024-01-01T00:00:00Z). Required; ranges before
            a symbol's listing are confirmed empty and count as done.
        until: End of the range, exclusive, UTC (e.g. 2024-02-01T00:00:00Z). Empty: now.
        data_dir: For Python callers only (a deployment's runs use VECTORFLOW_DATA_DIR).
    """
    if not since:
        raise InvalidInput("backfill needs since (e.g. 2024-01-01T00:00:00Z)")
    logger = get_run_logger()
    settings = load_settings(data_dir)
    plan = plan_ingest(
        **settings.series.pick(exchanges, markets, symbols, timeframes), since=since, until=until
    )
    logger.info("%d series from %s", len(plan.units), since)
    executor = TaskExecutor(candles.STEPS, backfill.STEPS, signals.STEPS)
    progress = _ArtifactUpdater(f"{artifact_family('backfill')}-progress")
    results = backfill_job(settings, plan, executor, [progress])
    candles.refresh_catalog_task(settings)
    publish_summary("backfill", results, settings)
    return final_state(results, logger)


run_form(backfill_candles)
