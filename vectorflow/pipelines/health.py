"""Health of the lake for `vectorflow status`: freshness and gaps per series, size per dataset.

A configured series (the settings' `[series]`) is `stale` when its newest stored row is older
than the data it should hold by more than one step plus the grace (default 15 minutes: three
5-minute ingest runs), and `missing` when nothing is stored. Candles should reach the last
closed candle, open interest the last closed period, funding the last 8-hour settlement, order
book snapshots the present. Series stored but not configured (a one-off backfill) are listed
and never count as stale.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs

from vectorflow.errors import InvalidInput
from vectorflow.exchanges.specs import implied_market
from vectorflow.lake.catalog import read_view
from vectorflow.lake.files import COMPACT_SUFFIX, CURRENT
from vectorflow.lake.objects import LakePath, fs_of, is_object
from vectorflow.lake.schema import DATASETS
from vectorflow.settings import Settings
from vectorflow.timeframes import floor_ms, ms_to_iso, timeframe_ms

FUNDING_STEP_MS = 8 * 3_600_000  # the longest settlement interval of either exchange
FRESH, STALE, MISSING, UNCONFIGURED = "fresh", "stale", "missing", "not configured"


@dataclass(frozen=True)
class SeriesHealth:
    """One series of one dataset: how far behind it is and how many rows it misses."""

    dataset: str
    exchange: str
    market: str
    symbol: str
    series: str
    last_time: str | None
    lag_minutes: float | None
    gaps: int | None  # rows missing between stored ones that nobody fetched
    state: str

    def as_row(self) -> dict:
        """A flat dict for tables."""
        return asdict(self)


def _expected_last(dataset: str, series: str, now: int) -> int:
    """Time of the newest row the series should hold at `now`."""
    if dataset in ("candles", "open_interest"):
        return floor_ms(now, series) - timeframe_ms(series)  # the last closed bar's open
    if dataset == "funding_rates":
        return now - FUNDING_STEP_MS
    return now


def _configured(settings: Settings, dataset: str, row: dict) -> bool:
    series = settings.series
    wanted = (
        row["exchange"] in series.exchanges
        and row["symbol"] in series.symbols
        and row["market"] in series.markets
    )
    return wanted and (dataset != "candles" or row["series"] in series.timeframes)


def series_health(settings: Settings, now: int, grace_ms: int) -> list[SeriesHealth]:
    """Every stored series (from the `coverage` view) and every configured candle series."""
    columns = (
        "dataset, exchange, market, symbol, series, epoch_ms(last_time) AS last_ms, "
        "missing - coalesce(confirmed_empty, 0) AS gaps"  # gaps nobody fetched; null: not known
    )
    frame = read_view(settings.lake_dir, "coverage", columns=columns)
    out = []
    seen = set()
    for row in frame.to_dict("records"):
        dataset = row["dataset"]
        last = int(row["last_ms"])
        lag = _expected_last(dataset, row["series"], now) - last
        configured = _configured(settings, dataset, row)
        stale = lag > grace_ms + (
            timeframe_ms(row["series"]) if dataset in ("candles", "open_interest") else 0
        )
        gaps = None if pd.isna(row["gaps"]) else int(row["gaps"])
        state = (STALE if stale else FRESH) if configured else UNCONFIGURED
        key = (dataset, row["exchange"], row["market"], row["symbol"], row["series"])
        seen.add(key)
        out.append(SeriesHealth(*key, ms_to_iso(last), round(max(lag, 0) / 60_000, 1), gaps, state))
    series = settings.series
    for exchange in series.exchanges:
        for symbol in series.symbols:
            if implied_market(symbol) not in series.markets:
                continue
            for timeframe in series.timeframes:
                key = ("candles", exchange, implied_market(symbol), symbol, timeframe)
                if key not in seen:
                    out.append(SeriesHealth(*key, None, None, None, MISSING))
    return sorted(out, key=lambda h: (h.dataset, h.exchange, h.market, h.symbol, h.series))


@dataclass(frozen=True)
class DatasetUsage:
    """Files and bytes of one dataset in the lake."""

    dataset: str
    files: int
    compacted: int
    bytes: int


def _visible_parquet(root: LakePath) -> list[tuple[str, int]]:
    """(name, bytes) of the Parquet files of a dataset folder; of a snapshot layout, the
    current snapshots only."""
    if is_object(root):
        selector = pafs.FileSelector(root.key, recursive=True, allow_not_found=True)
        infos = fs_of(root).get_file_info(selector)
        return [(i.base_name, i.size or 0) for i in infos if i.base_name.endswith(".parquet")]
    found = []
    for folder, dirs, names in os.walk(root):
        if CURRENT in dirs:  # a partition of a range dataset: read its current snapshot only
            dirs[:] = []
            current = Path(folder) / CURRENT
            found += [current / n for n in os.listdir(current) if n.endswith(".parquet")]
        found += [Path(folder) / n for n in names if n.endswith(".parquet")]
    return [(p.name, p.stat().st_size) for p in found if p.exists()]


def lake_usage(lake: LakePath) -> list[DatasetUsage]:
    """Files (compacted among them) and bytes per dataset; schema placeholders not counted."""
    usage = []
    for name in DATASETS:
        files = [(n, size) for n, size in _visible_parquet(lake / name) if not n.startswith("_")]
        compacted = sum(n.endswith(COMPACT_SUFFIX) for n, _ in files)
        size = sum(size for _, size in files)
        usage.append(DatasetUsage(name, len(files), compacted, size))
    return usage


def check_grace(minutes: float) -> int:
    """The grace in ms (InvalidInput for a negative value)."""
    if minutes < 0:
        raise InvalidInput(f"--grace-minutes must be >= 0, got {minutes}")
    return int(minutes * 60_000)
