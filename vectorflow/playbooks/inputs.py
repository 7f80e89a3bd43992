"""What a playbook is written from: the candles up to `as_of`, their market context, the signals.

`as_of` is a candle close time (open time + one timeframe). Candles are read from the lake
(never the network); the market context (last price, 24 h change and volume, ATR, a few
structural levels) is computed here, and the stored signals row at `as_of` is merged in when
the signals dataset holds one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import PurePath

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from vectorflow.lake.files import reading_again, safe_component
from vectorflow.lake.schema import CANDLES, DATASETS, Dataset
from vectorflow.lake.storage import Storage
from vectorflow.timeframes import timeframe_ms
from vectorflow.units import Unit

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
ATR_PERIOD = 14
#: signals columns that are price levels, by the name the payload and `levels_used` give them
SIGNAL_LEVELS = {
    "tpo_poc": "tpo_poc",
    "tpo_vah": "tpo_vah",
    "tpo_val": "tpo_val",
    "tpo_ib_high": "tpo_ib_high",
    "tpo_ib_low": "tpo_ib_low",
    "vp_poc": "vp_poc",
    "vp_vah": "vp_vah",
    "vp_val": "vp_val",
    "last_trap_level": "trap_level",
}


@dataclass(frozen=True)
class PlaybookInputs:
    """Everything one playbook is written from, and why it must be skipped (`stale`)."""

    unit: Unit
    as_of_ms: int
    market: dict[str, float] = field(default_factory=dict)
    levels: dict[str, float] = field(default_factory=dict)
    signals: dict[str, object] = field(default_factory=dict)
    stale: str | None = None

    @property
    def last_close(self) -> float:
        """Close of the last candle before as_of."""
        return self.market["last_price"]

    @property
    def atr(self) -> float:
        """Wilder ATR(14) of the candles before as_of."""
        return self.market["atr"]


def symbol_id(symbol: str) -> str:
    """The partition name of a unified symbol: BTC/USDT and BTC/USDT:USDT → BTCUSDT."""
    return symbol.split(":")[0].replace("/", "")


def query_lake(lake: Storage, sql: str, params: list) -> pd.DataFrame:
    """Rows of `sql` over lake files (none found: an empty frame)."""
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


_CANDLE_COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "quote_volume"]


def _series_folders(lake: Storage, dataset: str, unit: Unit) -> list[PurePath]:
    """Partition folders of `dataset` that may hold the series (symbol ids are the exchange's)."""
    market = lake.root / dataset / f"exchange={safe_component(unit.exchange)}"
    market = market / f"market={safe_component(unit.market)}"
    folders = lake.folders(market, f"*/timeframe={safe_component(unit.timeframe)}")
    guess = market / f"symbol_id={safe_component(symbol_id(unit.symbol))}"
    guess = guess / f"timeframe={safe_component(unit.timeframe)}"
    return [guess] if guess in folders else folders


def _read_window(
    lake: Storage, dataset: Dataset, unit: Unit, start_ms: int, end_ms: int
) -> pd.DataFrame:
    """Rows of the series with `order_by` time in [start, end), one per time (newest wins).

    Only the files whose name range overlaps the window are opened, with the dataset's pinned
    schema (older files read with the columns they lack as null); times come back as epoch ms.
    """
    t = ds.field(dataset.order_by)
    window = (ds.field("symbol") == unit.symbol) & (t >= _ts(start_ms)) & (t < _ts(end_ms))

    def read() -> pa.Table | None:
        files = [
            f.path
            for folder in _series_folders(lake, dataset.name, unit)
            for f in lake.files(folder, dataset)
            if f.last_ms >= start_ms and f.first_ms < end_ms
        ]
        if not files:
            return None
        return lake.parquet_dataset(files, dataset.schema).to_table(filter=window)

    table = reading_again(read)
    if table is None:
        return pd.DataFrame()
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.int64()))
    frame = table.to_pandas().sort_values([dataset.order_by, "ingested_at"], kind="stable")
    return frame.drop_duplicates(dataset.order_by, keep="last").reset_index(drop=True)


def _ts(ms: int) -> pa.Scalar:
    return pa.scalar(ms, pa.int64()).cast(pa.timestamp("ms"))


def read_candles(lake: Storage, unit: Unit, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Stored candles of `unit` with open time in [start, end), oldest first, one per time."""
    frame = _read_window(lake, CANDLES, unit, start_ms, end_ms)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in _CANDLE_COLUMNS})
    return frame[_CANDLE_COLUMNS]


def last_close_time(lake: Storage, unit: Unit) -> int | None:
    """Close time of the newest stored candle of `unit` (None when nothing is stored)."""
    folders = _series_folders(lake, CANDLES.name, unit)
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


def read_signals(lake: Storage, unit: Unit, as_of_ms: int) -> dict[str, object]:
    """The stored signals row of `unit` of the bar closing at as_of ({} when there is none)."""
    dataset = DATASETS.get("signals")
    if dataset is None:
        return {}
    try:
        frame = _read_window(lake, dataset, unit, as_of_ms, as_of_ms + 1)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # a file of an incompatible schema
        log.warning("%s: signals unreadable (%s); computing them", unit.label, exc)
        return {}
    if frame.empty:
        return {}
    row = {k: plain_value(v) for k, v in frame.iloc[-1].to_dict().items()}
    row.pop("ingested_at", None)
    return row | {"as_of_ms": row["as_of"]}


def plain_value(value: object) -> object:
    """numpy / pandas scalars as plain Python values; NaN and NaT as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        naive = value.tz_convert(None) if value.tzinfo is not None else value
        return int(naive.to_datetime64().astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, np.generic):
        return plain_value(value.item())
    if value is pd.NaT:
        return None
    return value


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = ATR_PERIOD) -> float:
    """The last value of Wilder's ATR(n) (TA-Lib's definition); NaN with fewer than n+1 bars."""
    if len(close) < n + 1:
        return math.nan
    prev = close[:-1]
    tr = np.maximum(high[1:], prev) - np.minimum(low[1:], prev)
    atr = tr[:n].mean()
    for value in tr[n:]:
        atr = (atr * (n - 1) + value) / n
    return float(atr)
