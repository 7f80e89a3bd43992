"""Signals and trap events are snapshot range datasets: `vectorflow doctor` verifies them like
candles, and a signals file it sets aside is recomputed by the next run."""

from __future__ import annotations

import os

import pyarrow.parquet as pq

from tests.conftest import sim_settings
from tests.pipelines.lineage_helpers import fresh, same_rows, stored
from vectorflow.lake.doctor import check_lake, repair_lake
from vectorflow.lake.schema import SIGNALS, TRAP_EVENTS
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.signals import series_folders, series_state, update_signals
from vectorflow.units import Unit

DAY = 86_400_000
UNIT = Unit("bybit", "spot", "BTC/USDT", "1h")
DERIVED = ["signals", "trap_events"]


def test_doctor_verifies_signal_snapshots_and_a_file_it_sets_aside_is_recomputed(
    sim, data_dir, tmp_path
):
    settings = sim_settings(sim, data_dir)
    first, _ = sim.bundled_range("5m")
    ingest_series(UNIT, first, sim.now_ms(), settings, clock=sim.now_ms)
    update_signals(UNIT, settings)
    lake, before = settings.storage, stored(settings, UNIT)
    for dataset, folder in zip((SIGNALS, TRAP_EVENTS), series_folders(lake, UNIT), strict=True):
        files = lake.files(folder, dataset)
        recorded = lake.recorded_rows(folder)  # the snapshot's manifest
        assert files and {f.path.name for f in files} == set(recorded)
        assert sum(recorded.values()) == sum(pq.read_metadata(f.path).num_rows for f in files)
    assert check_lake(lake, DERIVED) == []

    signals_folder = series_folders(lake, UNIT)[0]
    files = lake.files(signals_folder, SIGNALS)
    assert len(files) >= 2  # one per month: the damaged first one leaves a hole, not a tail
    damaged = files[0].path
    kept = pq.read_table(damaged).slice(0, 100)  # a shorter valid file under the same name
    pq.write_table(kept, damaged.with_name("replacement.tmp"))
    os.replace(damaged.with_name("replacement.tmp"), damaged)
    (problem,) = check_lake(lake, DERIVED)
    assert problem.path == str(damaged) and "where its snapshot recorded" in problem.what
    assert repair_lake(lake, 0.0, DERIVED) and check_lake(lake, DERIVED) == []
    left = len(stored(settings, UNIT))
    assert left < len(before)  # the file's other rows are gone

    plan = series_state(settings, UNIT)
    assert plan.reason == "history_changed" and plan.stale_bars == len(before) - left
    assert plan.start_ms == int(before["as_of"].iloc[100].value // 10**6)
    report = update_signals(UNIT, settings)
    assert report.rows_written == len(before) - 100  # from the hole on
    after = stored(settings, UNIT)
    assert len(after) == len(before) and check_lake(lake, DERIVED) == []
    same_rows(after, before)  # the inputs did not change: neither do the rows
    rows, events = fresh(sim, settings, UNIT, tmp_path / "fresh")
    same_rows(after, rows)
    same_rows(stored(settings, UNIT, "trap_events"), events)
    assert update_signals(UNIT, settings).rows_written == 0
