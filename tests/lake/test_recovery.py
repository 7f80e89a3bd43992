"""A partition whose `current` link was lost (copies, backups, hands) keeps every row.

Each test copies or damages a real lake landed from the simulator, then runs what a user runs
next (ingest, compaction, a query) and compares the rows with a lake that was never damaged.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import query_catalog, sim_settings
from tests.lake.helpers import candle_rows, copy_without_symlinks
from vectorflow.lake.compact import compact_lake, prune
from vectorflow.lake.schema import CANDLES
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.market_data import ingest_market_unit
from vectorflow.units import Unit

HOUR = 3_600_000
UNIT = Unit("binance", "spot", "BTC/USDT", "1h")
BOOK = Unit("bybit", "linear", "BTC/USDT:USDT", None, "orderbook_levels")
SNAPSHOT_TIMES = "SELECT count(DISTINCT snapshot_time) FROM orderbook_levels"


def _folder(data_dir: Path) -> Path:
    return data_dir / "lake/candles/exchange=binance/market=spot/symbol_id=BTCUSDT/timeframe=1h"


def _land(sim, data_dir: Path, runs: int, hours: int = 24) -> int:
    """`runs` ingest runs of `hours` each (a snapshot each), from the bundled history's start;
    the end of the last window."""
    first, _ = sim.bundled_range("1h")
    settings = sim_settings(sim, data_dir)
    for k in range(runs):
        since, until = first + k * hours * HOUR, first + (k + 1) * hours * HOUR
        report = ingest_series(UNIT, since, until, settings, clock=sim.now_ms)
        assert report.status == "ok", report
    return first + runs * hours * HOUR


def _expected(sim, tmp_path: Path, runs: int) -> list[tuple]:
    """The rows of a lake landed by the same runs and never damaged."""
    clean = tmp_path / "clean"
    clean.mkdir()
    _land(sim, clean, runs)
    return candle_rows(clean)


@pytest.fixture
def landed(sim, data_dir) -> Path:
    """Three days of candles in three runs: three snapshots of the partition."""
    _land(sim, data_dir, 3)
    assert len(candle_rows(data_dir)) == 72
    return data_dir


def test_a_copy_that_skipped_symlinks_then_an_ingest_keeps_every_row(sim, landed, tmp_path):
    # Regression: a copy without `current` (rsync -r without -l) read as empty, and the next
    # write deleted every snapshot as a crashed build: 175,680 candles became 43,200
    copy = tmp_path / "copy"
    copy_without_symlinks(landed, copy)
    assert not os.path.lexists(_folder(copy) / "current")
    first, _ = sim.bundled_range("1h")
    report = ingest_series(UNIT, first + 72 * HOUR, first + 96 * HOUR,
                           sim_settings(sim, copy), clock=sim.now_ms)  # fmt: skip
    assert report.rows_written == 24
    assert candle_rows(copy) == _expected(sim, tmp_path, 4)
    assert os.readlink(_folder(copy) / "current") == "v00000004"


def test_a_copy_that_followed_symlinks_then_ingest_and_compact_keep_every_row(
    sim, landed, tmp_path
):
    # Regression: after `cp -rL`, `current` is a directory: ingest failed with
    # IsADirectoryError on .current.*, and compact deleted the vNNNNNNNN directories (exit 0)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-rL", str(landed), str(copy)], check=True)
    assert (_folder(copy) / "current").is_dir() and not (_folder(copy) / "current").is_symlink()
    settings = sim_settings(sim, copy)
    first, _ = sim.bundled_range("1h")
    report = ingest_series(UNIT, first + 72 * HOUR, first + 96 * HOUR, settings,
                           clock=sim.now_ms)  # fmt: skip
    assert report.status == "ok" and report.rows_written == 24, report
    expected = _expected(sim, tmp_path, 4)
    assert candle_rows(copy) == expected
    compact_lake(settings, ["candles"], now=sim.now_ms())
    assert candle_rows(copy) == expected
    quarantined = list((copy / "quarantine").rglob("current.note.txt"))
    assert len(quarantined) == 1 and "a copy of v00000003" in quarantined[0].read_text()


def test_compaction_after_current_was_deleted_keeps_every_snapshots_rows(sim, landed, tmp_path):
    # Regression: `compact` with `current` missing removed 88 snapshot directories, exit 0
    os.unlink(_folder(landed) / "current")
    compact_lake(sim_settings(sim, landed), ["candles"], now=sim.now_ms())
    assert candle_rows(landed) == _expected(sim, tmp_path, 3)
    assert (_folder(landed) / "current").is_symlink()


def test_a_prune_after_current_was_deleted_deletes_only_what_it_names(sim, landed, tmp_path):
    # Regression: with `current` missing a writer took every snapshot for a crashed build;
    # a prune of the first day deleted all three
    os.unlink(_folder(landed) / "current")
    first, _ = sim.bundled_range("1h")
    match = {"exchange": "binance", "market": "spot", "symbol_id": "BTCUSDT", "timeframe": "1h"}
    prune(sim_settings(sim, landed), CANDLES, before=first + 24 * HOUR, match=match)
    assert candle_rows(landed) == _expected(sim, tmp_path, 3)[24:]


def test_order_book_snapshots_survive_a_lost_current(fresh_sim, data_dir):
    # Regression: order-book snapshots (which cannot be refetched) went from 3 to 1 after a
    # copy that skipped symlinks
    settings = sim_settings(fresh_sim, data_dir)
    now = fresh_sim.now_ms()
    for minutes in (0, 1, 2):
        fresh_sim.set_now(now + minutes * 60_000)
        ingest_market_unit(BOOK, None, fresh_sim.now_ms(), settings, 10, clock=fresh_sim.now_ms)
    assert query_catalog(data_dir, SNAPSHOT_TIMES) == [(3,)]
    (current,) = (data_dir / "lake/orderbook_levels").glob("exchange=*/*/*/current")
    os.unlink(current)
    fresh_sim.set_now(now + 3 * 60_000)
    ingest_market_unit(BOOK, None, fresh_sim.now_ms(), settings, 10, clock=fresh_sim.now_ms)
    assert query_catalog(data_dir, SNAPSHOT_TIMES) == [(4,)]


@pytest.mark.parametrize("damage", ["dangling", "missing"])
def test_a_lost_current_reads_every_row_and_is_relinked_with_a_warning(
    sim, landed, caplog, damage
):
    # Regression: a dangling `current` read as 0 rows, with no error
    current = _folder(landed) / "current"
    os.unlink(current)
    if damage == "dangling":
        os.symlink("v00000042", current)
    expected = _land_rows_without_repair(sim, landed)
    assert len(expected) == 72  # read from the newest complete snapshot before any repair
    with caplog.at_level(logging.WARNING, logger="vectorflow.lake"):
        assert len(candle_rows(landed)) == 72  # the catalog refresh relinks it
    assert os.readlink(current) == "v00000003"
    assert any(damage in r.message and "v00000003" in r.message for r in caplog.records)


def _land_rows_without_repair(sim, data_dir: Path) -> list:
    """The candles the library reads (backtests, playbooks), the lake left as it is."""
    from vectorflow.backtest.data import find_series, read_candles
    from vectorflow.settings.backtest import SeriesRef

    lake = sim_settings(sim, data_dir).storage
    series = find_series(lake, SeriesRef(exchange="binance", market="spot", symbol="BTC/USDT",
                                         timeframe="1h"))  # fmt: skip
    assert not os.path.exists(_folder(data_dir) / "current")  # nothing was repaired
    return read_candles(lake, series).values.tolist()
