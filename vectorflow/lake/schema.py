"""One pinned Arrow schema per dataset, used by every writer; times are UTC without a zone."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TIME = pa.timestamp("ms")  # UTC, no zone: no DuckDB session time zone can shift it


@dataclass(frozen=True)
class Dataset:
    """A lake dataset: its schema, natural key and hive partition keys."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    partitions: tuple[str, ...]  # path components, in order; named so none collides with a column
    order_by: str  # the column that orders rows within a partition (newest wins)


CANDLES = Dataset(
    name="candles",
    schema=pa.schema(
        [
            pa.field("exchange", pa.string(), nullable=False),
            pa.field("market", pa.string(), nullable=False),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("timeframe", pa.string(), nullable=False),
            pa.field("open_time", TIME, nullable=False),
            pa.field("open", pa.float64(), nullable=False),
            pa.field("high", pa.float64(), nullable=False),
            pa.field("low", pa.float64(), nullable=False),
            pa.field("close", pa.float64(), nullable=False),
            pa.field("volume", pa.float64(), nullable=False),
            pa.field("quote_volume", pa.float64()),
            pa.field("trades", pa.int64()),
            pa.field("taker_buy_volume", pa.float64()),
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("exchange", "market", "symbol", "timeframe", "open_time"),
    partitions=("exchange", "market", "symbol_id", "timeframe"),
    order_by="open_time",
)

DATASETS: dict[str, Dataset] = {CANDLES.name: CANDLES}
