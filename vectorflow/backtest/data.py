"""What a backtest reads, from the lake only (never the network): candles and signals.

Bars are one series' stored candles, deduplicated like the `candles` view (newest `ingested_at`
wins), indexed by close time: a signal computed at a bar's close and an order filled at that
close carry the same timestamp. Signals come from the lake's `signals` dataset when it covers the
bars, otherwise they are computed from the stored candles with `vectorflow.signals` (the same
pure functions the signals flow stores, without look-ahead).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import pandas as pd

from vectorflow.errors import InvalidInput
from vectorflow.lake.files import reading_again, visible_files
from vectorflow.lake.schema import CANDLES
from vectorflow.lake.storage import Storage
from vectorflow.settings.backtest import SeriesRef
from vectorflow.timeframes import TIMEFRAMES, timeframe_ms

log = logging.getLogger(__name__)

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
_SERIES_COLUMNS = ["exchange", "market", "symbol", "timeframe"]
TPO_MAX_MS = 30 * 60_000
MIN_STORED_COVERAGE = 0.95  # share of bars the stored signals must cover to be used


@dataclass(frozen=True)
class StoredSeries:
    """A candle series found in the lake, with its partition folder."""

    ref: SeriesRef
    symbol_id: str
    folder: PurePath


def _first_row(lake: Storage, path: PurePath) -> dict:
    batch = next(lake.parquet_file(path).iter_batches(batch_size=1, columns=_SERIES_COLUMNS))
    return {k: batch.column(k)[0].as_py() for k in _SERIES_COLUMNS}


def stored_series(lake: Storage, timeframes: list[str] | None = None) -> list[StoredSeries]:
    """Every candle series with data in the lake (optionally only at `timeframes`)."""
    found = []
    pattern = "exchange=*/market=*/symbol_id=*/timeframe=*"
    for folder in lake.folders(lake.root / CANDLES.name, pattern):
        if timeframes is not None and folder.name.split("=", 1)[1] not in timeframes:
            continue
        files = lake.files(folder, CANDLES)
        if files:
            ref = SeriesRef(**_first_row(lake, files[-1].path))
            found.append(StoredSeries(ref, folder.parent.name.split("=", 1)[1], folder))
    return found


def find_series(lake: Storage, ref: SeriesRef) -> StoredSeries:
    """The stored series `ref`; InvalidInput when the lake has no candles for it."""
    for series in stored_series(lake, [ref.timeframe]):
        if series.ref == ref:
            return series
    raise InvalidInput(
        f"no candles stored for {ref.exchange} {ref.market} {ref.symbol} {ref.timeframe} in "
        f"{lake.root}; ingest them first (vectorflow ingest --exchange {ref.exchange} --symbol "
        f"{ref.symbol} --timeframe {ref.timeframe} --since ...)"
    )


def read_candles(
    lake: Storage, series: StoredSeries, since_ms: int | None = None, until_ms: int | None = None
) -> pd.DataFrame:
    """The series' candles with open time in [since, until), oldest first, one row per candle
    (read like the `candles` view: the files no other file holds, newest row per key)."""

    from vectorflow.lake.reads import read_rows

    def read() -> pd.DataFrame | None:
        files = [
            f.path
            for f in visible_files(lake.files(series.folder, CANDLES))
            if (since_ms is None or f.last_ms >= since_ms)
            and (until_ms is None or f.first_ms < until_ms)
        ]
        return read_rows(lake, files, CANDLES).to_pandas() if files else None

    frame = reading_again(read)  # compaction may rename a file between listing and reading
    if frame is None:
        return pd.DataFrame(columns=["open_time", *BAR_COLUMNS])
    frame = frame[frame["symbol"] == series.ref.symbol]
    times = frame["open_time"].astype("datetime64[ms]").astype("int64").to_numpy()
    keep = np.ones(len(frame), dtype=bool)
    if since_ms is not None:
        keep &= times >= since_ms
    if until_ms is not None:
        keep &= times < until_ms
    return frame.loc[keep, ["open_time", *BAR_COLUMNS]].reset_index(drop=True)


def bars_from_candles(candles: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Candles as bars indexed by close time (open time + one timeframe)."""
    step = pd.Timedelta(milliseconds=timeframe_ms(timeframe))
    index = pd.DatetimeIndex(candles["open_time"] + step, name="close_time")
    return pd.DataFrame({k: candles[k].to_numpy(np.float64) for k in BAR_COLUMNS}, index=index)


def _stored_signals(lake: Storage, ref: SeriesRef, bars: pd.DataFrame) -> pd.DataFrame | None:
    """The lake's signal rows for the bars, or None when they do not cover them."""
    import duckdb

    from vectorflow.lake.catalog import read_view

    if bars.empty or not lake.exists(lake.root / "signals"):
        return None
    try:
        frame = read_view(lake, "signals", ref.model_dump())
    except (KeyError, duckdb.Error) as exc:  # no such view, or files it cannot read
        log.warning("stored signals unreadable (%s); computing them", str(exc).splitlines()[0])
        return None
    if frame.empty:
        return None
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame = frame.drop_duplicates("as_of", keep="last").set_index("as_of").reindex(bars.index)
    if frame["regime"].notna().mean() < MIN_STORED_COVERAGE:
        return None
    return frame


def _tpo_candles(
    lake: Storage, ref: SeriesRef, timeframe_step: int
) -> tuple[pd.DataFrame, str] | None:
    """The finest stored candles of 30 minutes or less of the same market, for TPO profiles."""
    if timeframe_step <= TPO_MAX_MS and TPO_MAX_MS % timeframe_step == 0:
        return None  # the bars themselves serve
    for timeframe in TIMEFRAMES:
        step = timeframe_ms(timeframe)
        if step > TPO_MAX_MS or TPO_MAX_MS % step:
            continue
        finer = ref.model_copy(update={"timeframe": timeframe})
        for series in stored_series(lake, [timeframe]):
            if series.ref == finer:
                return read_candles(lake, series), timeframe
    return None


def load_signals(
    lake: Storage, ref: SeriesRef, candles: pd.DataFrame, bars: pd.DataFrame
) -> tuple[pd.DataFrame | None, str]:
    """(signal frame aligned to the bars, where it came from: stored, computed or none)."""
    stored = _stored_signals(lake, ref, bars)
    if stored is not None:
        return stored, "stored"
    try:
        from vectorflow.signals.compute import signals_history
    except ImportError:
        return None, "none (vectorflow.signals unavailable)"
    if candles.empty:
        return None, "none (no candles)"
    tpo = _tpo_candles(lake, ref, timeframe_ms(ref.timeframe))
    computed = signals_history(
        candles,
        timeframe=ref.timeframe,
        tpo_candles=None if tpo is None else tpo[0],
        tpo_timeframe=None if tpo is None else tpo[1],
    )
    computed["as_of"] = pd.to_datetime(computed["as_of"])
    return computed.set_index("as_of").reindex(bars.index), "computed"


def load_bars(
    lake: Storage, ref: SeriesRef, since_ms: int | None = None, until_ms: int | None = None
) -> tuple[StoredSeries, pd.DataFrame, pd.DataFrame]:
    """(the stored series, its candles, its bars) for [since, until) on open time."""
    series = find_series(lake, ref)
    candles = read_candles(lake, series, since_ms, until_ms)
    if candles.empty:
        raise InvalidInput(f"no {ref.timeframe} candles of {ref.symbol} in the requested window")
    return series, candles, bars_from_candles(candles, ref.timeframe)
