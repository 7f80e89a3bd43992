"""Random sequences of ingests, compactions and faults: `doctor --repair` and one rerun leave the
lake equal to a fault-free one, and no row that was ever visible is lost.

Faults: `current` deleted; a file truncated (a bad disk, a copy cut short); a writer killed
just before its publish (the build complete, the link not yet swapped) or before its build was
renamed (an unfinished build). A kill is a crash raised inside the writer at that point: what
it leaves on disk is what a SIGKILL there leaves (the lock is released by the kernel either way;
`tests/resilience/test_crash.py` kills real processes).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import sim_settings
from tests.lake.helpers import candle_rows
from vectorflow.lake.catalog import refresh_catalog
from vectorflow.lake.compact import compact_lake
from vectorflow.lake.doctor import check_lake, repair_lake
from vectorflow.lake.reads import read_rows
from vectorflow.lake.schema import CANDLES
from vectorflow.lake.storage import local
from vectorflow.pipelines.candles import ingest_series
from vectorflow.units import Unit

HOUR = 3_600_000
UNIT = Unit("bybit", "spot", "BTC/USDT", "1h")
WINDOWS = 6  # the fault-free lake: six ingest runs of 12 hours
FOLDER = "lake/candles/exchange=bybit/market=spot/symbol_id=BTCUSDT/timeframe=1h"
STEPS = st.tuples(
    st.lists(st.tuples(st.just("ingest"), st.integers(0, WINDOWS - 1)), min_size=1, max_size=3),
    st.lists(st.one_of(
        st.tuples(st.just("ingest"), st.integers(0, WINDOWS - 1)),
        st.tuples(st.just("compact"), st.just(0)),
        st.tuples(st.just("drop_current"), st.just(0)),
        st.tuples(st.just("truncate"), st.integers(0, 7)),
        st.tuples(st.sampled_from(["kill_before_link", "kill_before_rename"]),
                  st.integers(0, WINDOWS - 1)),
    ), min_size=1, max_size=6),
).map(lambda parts: parts[0] + parts[1])  # a few ingests first: something to damage
_dirs = itertools.count()


class Killed(BaseException):
    """The writer dies here (not an Exception: nothing on the way catches it)."""


class _KillAt:
    """While active, the next publish dies at `where`."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self):
        target, name = (local, "point_current") if self.where == "link" else (os, "rename")
        self.restore = (target, name, getattr(target, name))

        def die(*args, **kwargs):
            if self.where == "rename" and ".build-" not in str(args[0]):
                return self.restore[2](*args, **kwargs)
            raise Killed(self.where)

        setattr(target, name, die)
        return self

    def __exit__(self, *exc) -> bool:
        setattr(*self.restore)
        return exc[0] is Killed


def _window(first: int, k: int) -> tuple[int, int]:
    return first + k * 12 * HOUR, first + (k + 1) * 12 * HOUR


@pytest.fixture(scope="module")
def fault_free(sim, tmp_path_factory) -> list[tuple]:
    data_dir = tmp_path_factory.mktemp("fault-free")
    first, _ = sim.bundled_range("1h")
    for k in range(WINDOWS):
        ingest_series(UNIT, *_window(first, k), sim_settings(sim, data_dir), clock=sim.now_ms)
    return candle_rows(data_dir)


def _truncate(sim, data_dir: Path, pick: int) -> set[tuple]:
    """Half of one published file cut off; the rows it held."""
    files = sorted((data_dir / FOLDER / "current").glob("*.parquet"))
    if not files:
        return set()
    path = files[pick % len(files)]
    held = _rows(sim_settings(sim, data_dir).storage, [path])
    os.truncate(path, os.path.getsize(path) // 2)
    return held


def _step(sim, data_dir: Path, kind: str, arg: int, seen: set, damaged: set) -> None:
    settings = sim_settings(sim, data_dir)
    first, _ = sim.bundled_range("1h")
    if kind == "ingest" or kind.startswith("kill"):
        with _KillAt(kind.rsplit("_", 1)[-1]) if kind.startswith("kill") else _nothing():
            ingest_series(UNIT, *_window(first, arg), settings, clock=sim.now_ms)
        seen |= _visible(sim, data_dir)
    elif kind == "compact":
        compact_lake(settings, ["candles"], now=sim.now_ms())
    elif kind == "drop_current" and os.path.lexists(data_dir / FOLDER / "current"):
        os.unlink(data_dir / FOLDER / "current")
    elif kind == "truncate":
        seen |= _visible(sim, data_dir)  # what was there before the disk lost it
        damaged |= _truncate(sim, data_dir, arg)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


def _rows(storage, paths: list) -> set[tuple]:
    try:
        rows = read_rows(storage, paths, CANDLES).drop_columns(["ingested_at"])
    except Exception:  # noqa: BLE001 - a truncated file fails the read: nothing seen now
        return set()
    return set(zip(*(rows.column(c).to_pylist() for c in rows.column_names), strict=True))


def _visible(sim, data_dir: Path) -> set[tuple]:
    """The rows of the partition's published state, read without repairing anything."""
    storage = sim_settings(sim, data_dir).storage
    return _rows(storage, [f.path for f in storage.files(data_dir / FOLDER, CANDLES)])


@settings(max_examples=20, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
def test_doctor_and_one_rerun_restore_the_fault_free_lake(sim, tmp_path, fault_free, steps):
    data_dir = tmp_path / f"lake-{next(_dirs)}"
    data_dir.mkdir()
    seen: set[tuple] = set()  # every row that was visible at some point
    damaged: set[tuple] = set()  # the rows of the files the faults cut short
    for kind, arg in steps:
        _step(sim, data_dir, kind, arg, seen, damaged)
    storage = sim_settings(sim, data_dir).storage
    repair_lake(storage, grace_seconds=0.0)
    refresh_catalog(sim_settings(sim, data_dir))
    assert check_lake(storage) == []
    assert seen - damaged <= set(candle_rows(data_dir)), steps  # only damage needs a refetch
    first, _ = sim.bundled_range("1h")
    since, until = _window(first, 0)[0], _window(first, WINDOWS - 1)[1]
    ingest_series(UNIT, since, until, sim_settings(sim, data_dir), clock=sim.now_ms)
    rows = candle_rows(data_dir)
    assert rows == fault_free, steps
    assert seen <= set(rows), steps  # no row that was ever visible is lost
