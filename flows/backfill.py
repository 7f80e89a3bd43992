"""Backfill of long candle histories, with its progress in the Prefect UI.

The progress artifact (`backfill-progress`) follows the share of the expected candles landed;
stopping the run and starting it again resumes after what landed.
"""

from __future__ import annotations

import threading
import time

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.task_runners import ThreadPoolTaskRunner

from flows.ingest import _failed_row, _workers
from flows.reporting import final_state, publish_summary, run_name
from tasks.backfill import backfill_series_task, expected_candles_task
from tasks.candles import load_markets_task, refresh_catalog_task
from vectorflow.pipelines.backfill import LISTENERS, Progress, Snapshot
from vectorflow.errors import InvalidInput
from vectorflow.pipelines.candles import plan_ingest
from vectorflow.settings import load_settings

ARTIFACT_EVERY_S = 2.0  # progress artifact updates at most this often


class _ArtifactUpdater:
    """A progress listener updating the flow's progress artifact, throttled."""

    def __init__(self, artifact_id) -> None:
        self.artifact_id, self.last = artifact_id, 0.0
        self.lock = threading.Lock()

    def __call__(self, snap: Snapshot, *, force: bool = False) -> None:
        with self.lock:
            if not force and time.monotonic() - self.last < ARTIFACT_EVERY_S:
                return
            self.last = time.monotonic()
        update_progress_artifact(self.artifact_id, round(snap.fraction * 100, 1), _describe(snap))


def _describe(snap: Snapshot) -> str:
    eta = f", about {snap.eta_seconds:.0f} s left" if snap.eta_seconds is not None else ""
    return (
        f"{snap.series_done}/{snap.series_total} series, {snap.pages} pages, "
        f"{snap.candles:,}/{snap.candles_expected:,} candles{eta}"
    )


@flow(
    name="backfill-candles",
    flow_run_name=run_name("backfill", "exchanges", "timeframes", "since"),
    task_runner=ThreadPoolTaskRunner(max_workers=_workers()),
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
    exchanges_used = dict.fromkeys(u.exchange for u in plan.units)
    loads = {ex: load_markets_task.submit(ex, settings) for ex in exchanges_used}
    broken = {ex: f.result(raise_on_failure=False) for ex, f in loads.items()}
    broken = {ex: e for ex, e in broken.items() if isinstance(e, BaseException)}
    units = [u for u in plan.units if u.exchange not in broken]
    expected = [
        f.result()
        for f in [
            expected_candles_task.submit(u, plan.since_ms, plan.until_ms, settings) for u in units
        ]
    ]
    progress = Progress(series_total=len(units), candles_expected=sum(expected))
    updater = _ArtifactUpdater(
        create_progress_artifact(
            0.0, key="backfill-progress", description=_describe(progress.snapshot())
        )
    )
    progress.listeners += [updater, *LISTENERS]
    logger.info("%d series, up to %d candles", len(units), progress.candles_expected)
    futures = {
        u: backfill_series_task.submit(u, plan.since_ms, plan.until_ms, settings, progress)
        for u in units
    }
    rows = []
    for unit in plan.units:
        outcome = broken.get(unit.exchange) or futures[unit].result(raise_on_failure=False)
        rows.append(_failed_row(unit, outcome) if isinstance(outcome, BaseException) else outcome)
    updater(progress.snapshot(), force=True)
    refresh_catalog_task(settings)
    create_table_artifact(table=rows, key="backfill-summary", description="Rows per series")
    publish_summary("backfill-candles", rows, settings)
    return final_state(rows, logger)
