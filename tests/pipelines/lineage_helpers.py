"""Helpers of the lineage tests: a series' stored signals, and the same computed in a fresh lake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from tests.conftest import sim_settings
from vectorflow.lake.catalog import read_view
from vectorflow.pipelines.signals import update_signals
from vectorflow.units import Unit

DERIVED = ("signals", "trap_events")


def series(unit: Unit) -> dict[str, str]:
    """The view filter of one series."""
    return {"exchange": unit.exchange, "market": unit.market, "symbol": unit.symbol,
            "timeframe": unit.timeframe}  # fmt: skip


def stored(settings, unit: Unit, view: str = "signals") -> pd.DataFrame:
    """The series' rows of `signals` (by as_of) or `trap_events` (by confirm time, key)."""
    order = ["as_of"] if view == "signals" else ["confirm_time", "type", "level_source"]
    return read_view(settings.storage, view, series(unit)).sort_values(order, ignore_index=True)


def fresh(sim, settings, unit: Unit, where: Path, toml: str | None = None):
    """(signals, trap events) of `unit` computed by one run in a new data dir holding the same
    inputs (candles, open interest, funding: the same files, so the same `ingested_at`)."""
    where.mkdir()
    shutil.copytree(settings.data_dir / "lake", where / "lake", symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n in DERIVED])  # fmt: skip
    if toml is not None:
        (where / "vectorflow.toml").write_text(toml)
    other = sim_settings(sim, where)
    update_signals(unit, other)
    return stored(other, unit), stored(other, unit, "trap_events")


def same_rows(got: pd.DataFrame, want: pd.DataFrame, *, lineage: bool = True) -> None:
    """Equal frames but for `ingested_at` (and the lineage's landing times unless `lineage`)."""
    drop = ["ingested_at"] + ([] if lineage else ["candles_landed", "derivatives_landed"])
    pd.testing.assert_frame_equal(got.drop(columns=drop), want.drop(columns=drop))
