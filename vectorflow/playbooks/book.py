"""The payload's `order_book` section: the latest snapshot at or before `as_of`, as orderbook_stats.

Per as_of, the newest stored snapshot no older than BOOK_MAX_AGE_MS is picked from the series'
`orderbook_levels` partition (only snapshot times are read first; then only the picked snapshots'
levels), and its figures are computed by the catalog's own `orderbook_stats` SQL, so they equal
what `FROM orderbook_stats` shows for that snapshot: mid, spread (bps), the quote value resting
within 50 and 100 bps of the mid on each side, and the imbalance (bid − ask) / (bid + ask).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from vectorflow.lake.files import data_files, parquet_dataset, reading_again
from vectorflow.lake.market_views import ORDERBOOK_STATS_SQL
from vectorflow.lake.objects import lake_connection
from vectorflow.lake.schema import ORDERBOOK_LEVELS
from vectorflow.pipelines.candles import SeriesUnit
from vectorflow.playbooks.reads import ms_timestamp, partition_folders, series_values
from vectorflow.timeframes import ms_to_iso

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


def _files(unit: SeriesUnit, lake: Path, as_ofs: np.ndarray) -> list:
    """The partition's files whose range overlaps some window [as_of − max age, as_of]."""
    values = {k: v for k, v in series_values(unit).items() if k != "timeframe"}
    files = [f for folder in partition_folders(lake, ORDERBOOK_LEVELS, values)
             for f in data_files(folder)]
    starts = as_ofs - BOOK_MAX_AGE_MS
    keep = []
    for f in files:
        i = np.searchsorted(as_ofs, f.first_ms, side="left")  # first as_of at or after the start
        if i < len(as_ofs) and starts[i] <= f.last_ms:
            keep.append(f.path)
    return keep


def _table(files: list, unit: SeriesUnit, where: ds.Expression, columns=None) -> pa.Table:
    def read() -> pa.Table:
        dataset = parquet_dataset(files, ORDERBOOK_LEVELS.schema)
        return dataset.to_table(columns=columns, filter=(ds.field("symbol") == unit.symbol) & where)

    return reading_again(read)


def _picked(times: np.ndarray, as_ofs: np.ndarray) -> np.ndarray:
    """Per as_of, the newest snapshot time at or before it within the max age (-1: none)."""
    idx = np.searchsorted(times, as_ofs, side="right") - 1
    if len(times) == 0:
        return np.full(len(as_ofs), -1, dtype=np.int64)
    found = times[np.maximum(idx, 0)]
    return np.where((idx >= 0) & (as_ofs - found <= BOOK_MAX_AGE_MS), found, -1)


def _stats(levels: pa.Table) -> pd.DataFrame:
    """orderbook_stats over these levels (the newest written row per level wins)."""
    key = ", ".join(ORDERBOOK_LEVELS.key)
    con = lake_connection()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("raw_levels", levels)
        con.execute(  # as the catalog's view: TIMESTAMP (Arrow's is TIMESTAMP_MS)
            "CREATE TEMP VIEW orderbook_levels AS SELECT * REPLACE "
            "(snapshot_time::TIMESTAMP AS snapshot_time) FROM raw_levels QUALIFY "
            f"row_number() OVER (PARTITION BY {key} ORDER BY ingested_at DESC) = 1"
        )
        sql = f"SELECT epoch_ms(snapshot_time) AS t, * FROM ({ORDERBOOK_STATS_SQL})"
        return con.execute(sql).df()
    finally:
        con.close()


def book_sections(lake: Path, unit: SeriesUnit, as_ofs: list[int]) -> dict[int, dict]:
    """The order_book section of each as_of."""
    at = np.array(sorted(set(as_ofs)), dtype=np.int64)
    files = _files(unit, lake, at) if len(at) else []
    time = ds.field("snapshot_time")
    picked = np.full(len(at), -1, dtype=np.int64)
    stats = pd.DataFrame()
    if files:
        first = ms_timestamp(int(at[0]) - BOOK_MAX_AGE_MS)
        window = (time >= first) & (time <= ms_timestamp(int(at[-1])))
        snaps = _table(files, unit, window, ["snapshot_time"]).column(0)
        times = np.unique(snaps.cast(pa.int64()).to_numpy())
        picked = _picked(times, at)
        wanted = np.unique(picked[picked >= 0])
        if len(wanted):
            levels = _table(files, unit, time.isin(pa.array(wanted).cast(pa.timestamp("ms"))))
            stats = _stats(levels).set_index("t")
    out = {}
    for as_of, snap in zip(at.tolist(), picked.tolist(), strict=True):
        if snap < 0:
            out[as_of] = {
                "source": SOURCE,
                "unavailable": f"no snapshot within {BOOK_MAX_AGE_MS // 60_000} minutes",
            }
            continue
        row = stats.loc[snap]
        section = {"time": ms_to_iso(snap), "age_seconds": (as_of - snap) / 1000, "source": SOURCE}
        out[as_of] = section | {k: _plain(row[k]) for k in STAT_COLUMNS}
    return out


def _plain(value: object) -> object:
    if value is None or pd.isna(value):
        return None
    return int(value) if isinstance(value, (np.integer, int)) else float(value)

