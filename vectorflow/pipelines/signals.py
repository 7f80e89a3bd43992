"""Compute a series' signals from the lake and store them: the `signals` and `trap_events` datasets.

Each run reads the series' stored candles (and, for perpetuals, its open interest and funding when
those datasets hold any), calls `vectorflow.signals.signals_update` once with `since` = the last
stored `as_of` (read from file names), and appends the rows of the bars closed since and the trap
events that changed. Both datasets are deduplicated on their keys by the catalog views, so a
rerun never duplicates anything.
"""

from __future__ import annotations

import logging
from pathlib import PurePath

import pandas as pd
import pyarrow as pa

from vectorflow.lake.catalog import read_view, view_definitions
from vectorflow.lake.files import partition_dir, safe_component
from vectorflow.lake.schema import SIGNALS, TRAP_EVENTS, Dataset
from vectorflow.lake.storage import Storage
from vectorflow.pipelines.run import Executor, run_units
from vectorflow.settings import Settings
from vectorflow.signals import SignalOptions, signals_update
from vectorflow.signals.tpo import TpoSettings
from vectorflow.timeframes import now_ms, timeframe_ms
from vectorflow.units import Unit, UnitResult

log = logging.getLogger(__name__)

_BOOL = {"tpo_poor_high", "tpo_poor_low"}
_TEXT = {"regime", "last_trap_type", "oi_quadrant", "type", "side", "level_source"}


def _finest_tpo_candles(lake: Storage, unit: Unit) -> tuple[pd.DataFrame | None, str | None]:
    where = {"exchange": unit.exchange, "market": unit.market, "symbol": unit.symbol}
    stored = read_view(lake, "candles", where, "DISTINCT timeframe")
    fine = sorted(
        (tf for tf in stored.get("timeframe", []) if timeframe_ms(tf) <= 1_800_000),
        key=timeframe_ms,
    )
    if not fine or fine[-1] == unit.timeframe and timeframe_ms(unit.timeframe) <= 1_800_000:
        return None, None  # the series' own candles serve for TPO, or there is nothing fine
    tpo = read_view(lake, "candles", where | {"timeframe": fine[0]})
    return tpo.sort_values("open_time"), fine[0]


def _derivatives(lake: Storage, unit: Unit) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    if unit.market != "linear":
        return None, None
    where = {"exchange": unit.exchange, "symbol": unit.symbol}
    views = view_definitions(lake)
    oi = read_view(lake, "open_interest", where) if "open_interest" in views else None
    funding = read_view(lake, "funding_rates", where) if "funding_rates" in views else None
    return (
        oi if oi is not None and len(oi) else None,
        funding if funding is not None and len(funding) else None,
    )


def _table(frame: pd.DataFrame, unit: Unit, dataset: Dataset) -> pa.Table:
    out = frame.copy()
    for name, value in (
        ("exchange", unit.exchange),
        ("market", unit.market),
        ("symbol", unit.symbol),
        ("timeframe", unit.timeframe),
    ):
        out[name] = value
    out["ingested_at"] = pd.Timestamp(now_ms(), unit="ms")
    columns = [f.name for f in dataset.schema]
    out = out[columns].astype({c: "object" for c in _BOOL | _TEXT if c in out})
    out = out.where(out.notna(), None)
    return pa.Table.from_pandas(out, schema=dataset.schema, preserve_index=False)


def _write(
    lake: Storage, frame: pd.DataFrame, unit: Unit, dataset: Dataset, folder: PurePath
) -> int:
    if frame.empty:
        return 0
    table = _table(frame, unit, dataset)
    times = table.column(dataset.order_by).cast(pa.int64()).to_numpy()
    lake.write(table, folder, int(times.min()), int(times.max()))
    return table.num_rows


def update_signals(
    unit: Unit, settings: Settings, *, tpo_row_size: float | None = None
) -> UnitResult:
    """Add the signals of the bars of `unit` closed since its last stored `as_of`.

    The TPO row size is `tpo_row_size`, else the settings' `tpo_row_sizes[symbol]`, else the
    documented default derived from price.
    """
    lake = settings.storage
    report = UnitResult(unit, detail={"events_written": 0, "last_as_of": None})
    where = {
        "exchange": unit.exchange,
        "market": unit.market,
        "symbol": unit.symbol,
        "timeframe": unit.timeframe,
    }
    candles = read_view(lake, "candles", where)
    if candles.empty:
        return report
    candles = candles.sort_values("open_time").reset_index(drop=True)
    symbol_id = safe_component(unit.symbol.split(":")[0].replace("/", ""))
    values = {
        "exchange": unit.exchange,
        "market": unit.market,
        "symbol_id": symbol_id,
        "timeframe": unit.timeframe,
    }
    signals_dir = partition_dir(lake.root, SIGNALS, values)
    stored = lake.stored_range(signals_dir, SIGNALS)
    tpo, tpo_tf = _finest_tpo_candles(lake, unit)
    oi, funding = _derivatives(lake, unit)
    tpo_row_size = tpo_row_size or settings.tpo_row_sizes.get(unit.symbol)
    options = (
        SignalOptions(tpo=TpoSettings(row_size=tpo_row_size)) if tpo_row_size else (SignalOptions())
    )
    rows, events = signals_update(
        candles,
        timeframe=unit.timeframe,
        since=stored[1] if stored else None,
        tpo_candles=tpo,
        tpo_timeframe=tpo_tf,
        open_interest=oi,
        funding=funding,
        options=options,
    )
    report.rows_written = _write(lake, rows, unit, SIGNALS, signals_dir)
    events_folder = partition_dir(lake.root, TRAP_EVENTS, values)
    events_written = _write(lake, events, unit, TRAP_EVENTS, events_folder)
    report.detail["events_written"] = events_written
    if not rows.empty:
        report.first = rows["as_of"].min().strftime("%Y-%m-%dT%H:%M:%SZ")
        report.last = report.detail["last_as_of"] = rows["as_of"].max().strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    log.info("%s: %d signal rows, %d trap events", unit.label, report.rows_written, events_written)
    return report


def signal_units(units: list[Unit], settings: Settings) -> list[Unit]:
    """The units among `units` whose timeframe gets signals (`signal_timeframes`), as signal
    units."""
    return [
        Unit(u.exchange, u.market, u.symbol, u.timeframe, "signals")
        for u in units
        if u.timeframe in settings.signal_timeframes
    ]


def signals_job(settings: Settings, units: list[Unit], executor: Executor) -> list[UnitResult]:
    """Bring the stored signals of each series (at the settings' `signal_timeframes`) up to
    date, concurrently; one result per signal unit."""
    return run_units(executor, update_signals, signal_units(units, settings), settings)
