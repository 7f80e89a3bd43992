"""Reads of the lake for playbooks: rows of one series in a time window, newest write winning.

Only the files whose name range overlaps the window are opened, with the dataset's pinned schema
(older files read with the columns they lack as null); times come back as epoch ms. Every read
keeps to a window that ends at a given time, so a playbook as of T never sees a row after T.
"""

from __future__ import annotations

from pathlib import PurePath

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from vectorflow.lake.compact import partition_folders as matching_folders
from vectorflow.lake.files import partition_dir, reading_again, safe_component, symbol_id
from vectorflow.lake.schema import CANDLES, Dataset
from vectorflow.lake.storage import Storage
from vectorflow.timeframes import TIMEFRAMES, timeframe_ms
from vectorflow.units import Unit

CANDLE_COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "quote_volume"]


def query_lake(lake: Storage, sql: str, params: list) -> pd.DataFrame:
    """Rows of `sql` over lake files (bound parameters only); empty when no file matches."""
    con = lake.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params).df()
    except duckdb.IOException as exc:  # no file matches the glob: nothing stored yet
        if "No files found" in str(exc):
            return pd.DataFrame()
        raise
    finally:
        con.close()


def partition_folders(
    lake: Storage, dataset: Dataset, values: dict[str, str]
) -> list[PurePath]:
    """Partition folders of `dataset` matching `values` (a partition key not given matches any).

    With every key given, a missing folder is looked for under any symbol id: symbol ids are
    the exchange's, nearly always (not always) the unified symbol without separators.
    """
    if all(key in values for key in dataset.partitions):
        exact = partition_dir(lake.root, dataset, values)
        if lake.exists(exact):
            return [exact]
        values = {k: v for k, v in values.items() if k != "symbol_id"}  # rows carry the symbol
    return matching_folders(lake, dataset, **{k: safe_component(v) for k, v in values.items()})


def read_rows(
    lake: Storage,
    dataset: Dataset,
    folders: list[PurePath],
    symbol: str,
    start_ms: int,
    end_ms: int,
    *,
    key: tuple[str, ...] | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Rows of `symbol` with `order_by` time in [start, end), oldest first, one per key.

    `key` (default: the time alone) picks the newest written row of each key; `columns` (with
    the key, the time and `ingested_at`) limits what is read.
    """
    subset = list(key) if key else [dataset.order_by]
    wanted = None
    if columns is not None:
        wanted = list(dict.fromkeys([*subset, dataset.order_by, "ingested_at", *columns]))
    t = ds.field(dataset.order_by)
    window = (t >= ms_timestamp(start_ms)) & (t < ms_timestamp(end_ms))
    window = window & (ds.field("symbol") == symbol)

    def read() -> pa.Table | None:
        files = [
            f.path
            for folder in folders
            for f in lake.files(folder, dataset)
            if f.last_ms >= start_ms and f.first_ms < end_ms
        ]
        if not files:
            return None
        return lake.parquet_dataset(files, dataset.schema).to_table(columns=wanted, filter=window)

    table = reading_again(read)
    if table is None or table.num_rows == 0:
        return pd.DataFrame({f.name: pd.Series(dtype=object) for f in dataset.schema})
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.int64()))
    frame = table.to_pandas().sort_values([dataset.order_by, "ingested_at"], kind="stable")
    frame = frame.drop_duplicates(subset, keep="last")
    return frame.sort_values(dataset.order_by, kind="stable").reset_index(drop=True)


def ms_timestamp(ms: int) -> pa.Scalar:
    """Epoch ms as an Arrow timestamp scalar (the lake's time type), for filters."""
    return pa.scalar(ms, pa.int64()).cast(pa.timestamp("ms"))


def series_values(unit: Unit) -> dict[str, str]:
    """The partition values of a series (exchange, market, symbol id, timeframe)."""
    return {
        "exchange": unit.exchange,
        "market": unit.market,
        "symbol_id": symbol_id(unit.symbol),
        "timeframe": unit.timeframe,
    }


def read_candles(lake: Storage, unit: Unit, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Stored candles of `unit` with open time in [start, end), oldest first, one per time."""
    folders = partition_folders(lake, CANDLES, series_values(unit))
    frame = read_rows(lake, CANDLES, folders, unit.symbol, start_ms, end_ms)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in CANDLE_COLUMNS})
    frame = frame[CANDLE_COLUMNS].astype({c: float for c in CANDLE_COLUMNS[1:]})
    return frame.astype({"open_time": np.int64})


def stored_timeframes(lake: Storage, unit: Unit) -> list[str]:
    """Timeframes with candles stored for the unit's exchange, market and symbol, finest first."""
    values = {k: v for k, v in series_values(unit).items() if k != "timeframe"}
    names = {f.name.split("=", 1)[1] for f in partition_folders(lake, CANDLES, values)}
    return sorted((tf for tf in names if tf in TIMEFRAMES), key=timeframe_ms)


def last_close_time(lake: Storage, unit: Unit) -> int | None:
    """Close time of the newest stored candle of `unit` (None when nothing is stored)."""
    folders = partition_folders(lake, CANDLES, series_values(unit))
    if len(folders) == 1:  # the series' own folder: its file names say it
        stored = lake.stored_range(folders[0], CANDLES)
        return None if stored is None else stored[1] + timeframe_ms(unit.timeframe)
    sql = """SELECT epoch_ms(max(open_time)) FROM read_parquet(?, hive_partitioning = false)
             WHERE symbol = ?"""

    def read() -> pd.DataFrame:  # the files of each folder's current snapshot
        files = [str(f.path) for folder in folders for f in lake.files(folder, CANDLES)]
        return query_lake(lake, sql, [files, unit.symbol]) if files else pd.DataFrame()

    frame = reading_again(read)
    if frame.empty or pd.isna(frame.iloc[0, 0]):
        return None
    return int(frame.iloc[0, 0]) + timeframe_ms(unit.timeframe)
