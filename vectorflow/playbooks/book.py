"""The payload's `order_book` section: the latest snapshot at or before `as_of`, as orderbook_stats.

Per as_of, the newest stored snapshot no older than BOOK_MAX_AGE_MS is picked from the series'
`orderbook_levels` partition (only snapshot times are read first; then only the picked snapshots'
levels), and its figures are computed by the catalog's own `orderbook_stats` SQL, so they equal
what `FROM orderbook_stats` shows for that snapshot: mid, spread (bps), the quote value resting
within 50 and 100 bps of the mid on each side, and the imbalance (bid − ask) / (bid + ask).
"""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from vectorflow.lake.files import partition_dir, reading_again
from vectorflow.lake.market_views import ORDERBOOK_STATS_SQL
from vectorflow.lake.schema import ORDERBOOK_LEVELS
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.reads import partition_folders, series_values
from vectorflow.timeframes import ms_to_iso
from vectorflow.units import Unit

BOOK_MAX_AGE_MS = 5 * 60_000
SOURCE = "orderbook_levels (as orderbook_stats)"
STAT_COLUMNS = (
    "mid",
    "spread_bps",
    "bid_depth_50bps_quote",
    "ask_depth_50bps_quote",
    "imbalance_50bps",
    "bid_depth_100bps_quote",
    "ask_depth_100bps_quote",
    "imbalance_100bps",
    "bid_levels",
    "ask_levels",
)


def _files(unit: Unit, lake: Storage, as_ofs: np.ndarray) -> tuple[list, bool]:
    """(the files whose range overlaps some window [as_of − max age, as_of], whether they are
    the series' own partition: then every row is the symbol's)."""
    values = {k: v for k, v in series_values(unit).items() if k != "timeframe"}
    folders = partition_folders(lake, ORDERBOOK_LEVELS, values)
    own = folders == [partition_dir(lake.root, ORDERBOOK_LEVELS, values)]
    starts = as_ofs - BOOK_MAX_AGE_MS
    keep = []
    for f in (f for folder in folders for f in lake.files(folder, ORDERBOOK_LEVELS)):
        i = np.searchsorted(as_ofs, f.first_ms, side="left")  # first as_of at or after the start
        if i < len(as_ofs) and starts[i] <= f.last_ms:
            keep.append(f.path)
    return keep, own


def _snapshot_times(lake: Storage, files: list, unit: Unit, own: bool) -> np.ndarray:
    """Distinct snapshot times (epoch ms) of the series in these files, sorted.

    Only the time column is read (and the symbol, when the files may hold other symbols).
    """
    mine = None if own else ds.field("symbol") == unit.symbol

    def read() -> np.ndarray:
        table = lake.parquet_dataset(files, ORDERBOOK_LEVELS.schema).to_table(
            columns=["snapshot_time"], filter=mine
        )
        return table.column(0).cast(pa.int64()).to_numpy()

    times = reading_again(read)
    if len(times) and not np.all(times[1:] >= times[:-1]):
        times = np.sort(times)
    return times[np.r_[True, times[1:] != times[:-1]]] if len(times) else times


def _picked(times: np.ndarray, as_ofs: np.ndarray) -> np.ndarray:
    """Per as_of, the newest snapshot time at or before it within the max age (-1: none)."""
    idx = np.searchsorted(times, as_ofs, side="right") - 1
    if len(times) == 0:
        return np.full(len(as_ofs), -1, dtype=np.int64)
    found = times[np.maximum(idx, 0)]
    return np.where((idx >= 0) & (as_ofs - found <= BOOK_MAX_AGE_MS), found, -1)


_MEMORY: list[duckdb.DuckDBPyConnection] = []
_MEMORY_LOCK = threading.Lock()


def _memory() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process (opening one costs tens of ms); a cursor per query."""
    with _MEMORY_LOCK:
        if not _MEMORY:
            _MEMORY.append(duckdb.connect())
        return _MEMORY[0]


_READ = ["snapshot_time", "side", "level", "price", "amount", "ingested_at"]


def _levels(lake: Storage, files: list, unit: Unit, own: bool, wanted: np.ndarray) -> pa.Table:
    """The levels of these snapshots: only the columns orderbook_stats and its key need."""
    picked = ds.field("snapshot_time").isin(pa.array(wanted, pa.int64()).cast(pa.timestamp("ms")))
    mine = picked if own else picked & (ds.field("symbol") == unit.symbol)

    def read() -> pa.Table:
        dataset = lake.parquet_dataset(files, ORDERBOOK_LEVELS.schema)
        return dataset.to_table(columns=_READ, filter=mine)

    return reading_again(read)


def _stats(levels: pa.Table, unit: Unit) -> dict[int, dict]:
    """orderbook_stats of these levels (the newest written row of each level wins), by time."""
    con = _memory().cursor()  # over the Arrow table only: no lake file is read here
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("picked_levels", levels)
        # the levels as the catalog's view reads them: deduplicated, TIMESTAMP
        levels_sql = (
            "SELECT ?::VARCHAR AS exchange, ?::VARCHAR AS market, ?::VARCHAR AS symbol, "
            "snapshot_time::TIMESTAMP AS snapshot_time, side, level, price, amount, "
            "NULL::VARCHAR AS time_source FROM picked_levels QUALIFY row_number() OVER "
            "(PARTITION BY snapshot_time, side, level ORDER BY ingested_at DESC) = 1"
        )
        sql = (
            f"WITH orderbook_levels AS ({levels_sql}) "
            f"SELECT epoch_ms(snapshot_time) AS t, * FROM ({ORDERBOOK_STATS_SQL})"
        )
        params = [unit.exchange, unit.market, unit.symbol]
        rows = con.execute(sql, params).df().to_dict("records")
    finally:
        con.close()
    return {int(row["t"]): row for row in rows}


def book_sections(lake: Storage, unit: Unit, as_ofs: list[int]) -> dict[int, dict]:
    """The order_book section of each as_of."""
    at = np.array(sorted(set(as_ofs)), dtype=np.int64)
    files, own = _files(unit, lake, at) if len(at) else ([], True)
    picked = np.full(len(at), -1, dtype=np.int64)
    stats: dict[int, dict] = {}
    if files:
        times = _snapshot_times(lake, files, unit, own)
        picked = _picked(times, at)
        wanted = np.unique(picked[picked >= 0])
        if len(wanted):
            stats = _stats(_levels(lake, files, unit, own, wanted), unit)
    out = {}
    for as_of, snap in zip(at.tolist(), picked.tolist(), strict=True):
        if snap < 0:
            out[as_of] = {
                "source": SOURCE,
                "unavailable": f"no snapshot within {BOOK_MAX_AGE_MS // 60_000} minutes",
            }
            continue
        row = stats[snap]
        section = {"time": ms_to_iso(snap), "age_seconds": (as_of - snap) / 1000, "source": SOURCE}
        out[as_of] = section | {k: _plain(row[k]) for k in STAT_COLUMNS}
    return out


def _plain(value: object) -> object:
    if value is None or pd.isna(value):
        return None
    return int(value) if isinstance(value, (np.integer, int)) else float(value)

