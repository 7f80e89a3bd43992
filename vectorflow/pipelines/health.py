"""Health of the lake for `vectorflow status`: freshness and gaps per series, size per dataset.

A configured series (the settings' `[series]`) is `stale` when its newest stored row is older
than the data it should hold by more than one step plus the grace (default 15 minutes: three
5-minute ingest runs), and `missing` when nothing is stored. Candles should reach the last
closed candle, open interest the last closed period, funding the last 8-hour settlement, order
book snapshots the present. Series stored but not configured (a one-off backfill) are listed
and never count as stale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from vectorflow import values
from vectorflow.exchanges.specs import implied_market
from vectorflow.lake.catalog import read_view
from vectorflow.lake.files import COMPACT_SUFFIX
from vectorflow.lake.schema import DATASETS
from vectorflow.lake.storage import Storage
from vectorflow.settings import Settings
from vectorflow.timeframes import floor_ms, ms_to_iso

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
    """Time of the newest row the series should hold at `now` (by the dataset's gap rule)."""
    ds = DATASETS[dataset]
    if ds.stepped_by_series:
        return floor_ms(now, series) - ds.step_ms(series)  # the last closed bar's open
    return now - (ds.step_ms() or 0)  # funding: the last settlement; order books: now


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
    frame = read_view(settings.storage, "coverage", columns=columns)
    out = []
    seen = set()
    for row in frame.to_dict("records"):
        dataset = row["dataset"]
        last = int(row["last_ms"])
        lag = _expected_last(dataset, row["series"], now) - last
        configured = _configured(settings, dataset, row)
        ds = DATASETS[dataset]
        stale = lag > grace_ms + (ds.step_ms(row["series"]) if ds.stepped_by_series else 0)
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


def lake_usage(storage: Storage) -> list[DatasetUsage]:
    """Files (compacted among them) and bytes per dataset; schema placeholders not counted."""
    usage = []
    for dataset in DATASETS.values():
        files = [(n, size) for n, size in storage.usage(dataset) if not n.startswith("_")]
        compacted = sum(n.endswith(COMPACT_SUFFIX) for n, _ in files)
        size = sum(size for _, size in files)
        usage.append(DatasetUsage(dataset.name, len(files), compacted, size))
    return usage


def check_grace(minutes: float) -> int:
    """The grace in ms (InvalidInput for a negative or non-finite value)."""
    return int(values.number(minutes, name="--grace-minutes", minimum=0) * 60_000)
