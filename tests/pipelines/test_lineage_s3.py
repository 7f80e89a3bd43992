"""Recomputed signals on an object-store lake (moto's S3 on 127.0.0.1): the same rows as on disk,
one per bar, and the replaced objects gone."""

from __future__ import annotations

import uuid

import pyarrow.fs as pafs

from tests.conftest import sim_env
from tests.pipelines.lineage_helpers import same_rows, stored
from vectorflow.config import load_settings
from vectorflow.lake.files import parse_name
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.market_data import ingest_market_unit
from vectorflow.pipelines.signals import update_signals
from vectorflow.sim.s3 import LocalS3
from vectorflow.units import Unit

UNIT = Unit("binance", "linear", "BTC/USDT:USDT", "1h")
OI = Unit("binance", "linear", "BTC/USDT:USDT", "1h", "open_interest")


def _signals_after_late_oi(sim, settings) -> tuple:
    first, _ = sim.bundled_range("5m")
    ingest_series(UNIT, first, sim.now_ms(), settings, clock=sim.now_ms)
    update_signals(UNIT, settings)
    ingest_market_unit(OI, None, sim.now_ms(), settings)
    report = update_signals(UNIT, settings)
    return report, stored(settings, UNIT), stored(settings, UNIT, "trap_events")


def test_late_open_interest_on_s3_recomputes_as_on_disk(sim, tmp_path, monkeypatch):
    disk = load_settings(tmp_path / "disk", env=sim_env(sim, tmp_path / "disk"))
    want = _signals_after_late_oi(sim, disk)
    bucket = f"vf-{uuid.uuid4().hex[:12]}"
    with LocalS3() as s3:
        env = sim_env(sim, tmp_path / "s3") | s3.lake_env(bucket)
        for key, value in s3.aws_env.items():  # the S3 client's credentials: the process's
            monkeypatch.setenv(key, value)
        settings = load_settings(tmp_path / "s3", env=env)
        report, rows, events = _signals_after_late_oi(sim, settings)
        listing = settings.storage.fs.get_file_info(pafs.FileSelector(bucket, recursive=True))
    assert report.detail["stale_reason"] == want[0].detail["stale_reason"] == "missing_oi"
    assert report.rows_written == want[0].rows_written > 500
    assert rows["as_of"].is_unique and len(rows) == len(want[1])
    same_rows(rows, want[1], lineage=False)
    same_rows(events, want[2], lineage=False)
    names = sorted(i.base_name for i in listing if "/signals/exchange=" in i.path
                   and i.base_name.endswith(".parquet"))  # fmt: skip
    ranges = [parse_name(n)[:2] for n in names]
    # April; May up to the first bar OI covers (rewritten without the rest); the rest of May;
    # June: the first run's May and June objects were replaced, not kept beside the new ones
    apart = all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert len(ranges) == 4 and apart, names
