"""A lake with everything a playbook reads, landed from the simulator by the real pipeline.

Four 1h series (Binance and Bybit, spot and perpetual BTC/USDT) with their 4h and 30m candles,
order-book snapshots at a few times, open interest and funding of the perpetuals landed before
the signals are computed; and a copy of a lake truncated at a time (every row after it left out).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.dataset as ds

from tests.conftest import SIM_NOW, sim_settings
from tests.lake.helpers import publish_as_is
from vectorflow.lake.schema import DATASETS
from vectorflow.lake.storage import LocalStorage
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.market_data import ingest_market_unit
from vectorflow.pipelines.signals import update_signals
from vectorflow.playbooks.reads import ms_timestamp
from vectorflow.timeframes import parse_time, timeframe_ms
from vectorflow.units import Unit

HOUR = 3_600_000
DAY = 24 * HOUR
NOW = parse_time(SIM_NOW)
AS_OF_NOW = NOW // HOUR * HOUR  # the newest closed hour at the simulator's clock
AS_OF_PAST = AS_OF_NOW - 3 * HOUR
#: snapshots: just before the past as_of, just after it (never read for it), before now
BOOK_TIMES = (AS_OF_PAST - 60_000, AS_OF_PAST + 60_000, AS_OF_NOW - 90_000)
VENUES = [
    ("binance", "spot", "BTC/USDT"),
    ("binance", "linear", "BTC/USDT:USDT"),
    ("bybit", "spot", "BTC/USDT"),
    ("bybit", "linear", "BTC/USDT:USDT"),
]
SERIES = [Unit(e, m, s, "1h") for e, m, s in VENUES]
PERP = Unit("binance", "linear", "BTC/USDT:USDT", "1h")
TIMEFRAMES = ("1h", "4h")
#: the time column of each dataset a playbook reads, and how long after its time a row is known
TIME_COLUMNS = {
    "candles": "open_time",
    "signals": "as_of",
    "orderbook_levels": "snapshot_time",
    "open_interest": "time",
    "funding_rates": "funding_time",
}


def build_market_lake(sim, data_dir: Path):
    """Land candles, books, OI and funding from the simulator, then compute the signals."""
    settings = sim_settings(sim, data_dir)
    for e, m, s in VENUES:
        for timeframe, days in (("1h", 12), ("4h", 14), ("30m", 3)):
            unit = Unit(e, m, s, timeframe)
            ingest_series(unit, NOW - days * DAY, NOW, settings, clock=sim.now_ms)
    for when in BOOK_TIMES:
        sim.set_now(when)
        for e, m, s in VENUES:
            unit = Unit(e, m, s, None, "orderbook_levels")
            ingest_market_unit(unit, None, when, settings, 20, clock=sim.now_ms)
    sim.set_now(NOW)
    for exchange in ("binance", "bybit"):
        for dataset, period in (("open_interest", "5m"), ("funding_rates", None)):
            unit = Unit(exchange, "linear", "BTC/USDT:USDT", period, dataset)
            ingest_market_unit(unit, NOW - 12 * DAY, NOW, settings, clock=sim.now_ms)
    for e, m, s in VENUES:  # the open interest landed first: the perpetuals' signals carry it
        for timeframe in TIMEFRAMES:
            update_signals(Unit(e, m, s, timeframe), settings)
    return settings


def truncate_lake(source: Path, target: Path, as_of_ms: int) -> Path:
    """A copy of the lake's market data with only the rows known at as_of (candles closed)."""
    source_lake = LocalStorage(source, source.parent)
    target_lake = LocalStorage(target, target.parent)
    for name, column in TIME_COLUMNS.items():
        dataset = DATASETS[name]
        depth = "/".join(["*"] * len(dataset.partitions))
        for folder in source_lake.folders(source / name, depth):
            files = [f.path for f in source_lake.files(folder, dataset)]
            if not files:
                continue
            end = as_of_ms
            if name == "candles":
                end -= timeframe_ms(folder.name.split("=", 1)[1])
            table = source_lake.parquet_dataset(files, dataset.schema).to_table(
                filter=ds.field(column) <= ms_timestamp(end)
            )
            if table.num_rows:
                times = table.column(dataset.order_by).to_numpy().astype("datetime64[ms]")
                first, last = int(times.min().astype(int)), int(times.max().astype(int))
                _land(target_lake, dataset, target / folder.relative_to(source), table, first, last)
    return target


def _land(lake: LocalStorage, dataset, folder: Path, table, first: int, last: int) -> None:
    """One file of rows in a partition: a published snapshot, or a flat dataset's file."""
    if dataset.complete_ranges:
        publish_as_is(lake, dataset, folder, table, first, last)
    else:
        lake.write(table, folder, first, last)


def copy_data_dir(source: Path, target: Path) -> Path:
    """A copy of a data dir (a test that writes playbooks writes into its own)."""
    shutil.copytree(source, target, symlinks=True)  # `current` links stay links
    return target
