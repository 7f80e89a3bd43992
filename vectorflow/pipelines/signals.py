"""Compute a series' signals from the lake and keep them true: `signals` and `trap_events`.

A run reads the series' inputs (candles, its TPO candles, and for perpetuals open interest and
funding), compares the lineage of its stored bars with the lineage the inputs give now
(`vectorflow.pipelines.lineage`) and, when a bar is new or stale, computes the series once
and replaces its rows from the earliest such bar on: one new snapshot of the partition,
published under its lock, so readers see the old rows or the new ones, never both, and never
two rows of a bar. Trap events are compared with the stored ones and replaced from the
earliest that differs, before the rows: a run killed between the two leaves the rows stale, and
the next run computes them again. A run with nothing stale computes and writes nothing, and
imports `vectorflow.signals` (numba, ~0.6 s) only when there is something to compute.
"""

from __future__ import annotations

import json
import logging
from pathlib import PurePath

import numpy as np
import pandas as pd
import pyarrow as pa

from vectorflow.exchanges.specs import implied_market
from vectorflow.lake.catalog import read_view
from vectorflow.lake.files import (
    partition_dir,
    partition_pattern,
    reading_again,
    safe_component,
    symbol_id,
)
from vectorflow.lake.schema import CANDLES, LINEAGE_COLUMNS, SIGNALS, TRAP_EVENTS, Dataset
from vectorflow.lake.storage import Storage
from vectorflow.lake.store import replace_from
from vectorflow.pipelines.lineage import (
    NONE_MS,
    TIMES,
    Lineage,
    SeriesInputs,
    StalePlan,
    bar_lineage,
    ms_column,
    read_inputs,
    signal_options,
    stale_plan,
    stored_lineage,
)
from vectorflow.pipelines.run import Executor, run_units
from vectorflow.settings import Settings
from vectorflow.timeframes import ms_to_iso, now_ms
from vectorflow.units import Unit, UnitResult

log = logging.getLogger(__name__)

_BOOL = {"tpo_poor_high", "tpo_poor_low"}
_TEXT = {"regime", "last_trap_type", "oi_quadrant", "type", "side", "level_source",
         "code_version", "signal_options"}  # fmt: skip
_EVENT_COLUMNS = ("type", "side", "level", "level_source", "breakout_time", "confirm_time",
                  "breakout_volume_ratio", "oi_change", "funding_sign", "extreme",
                  "invalidated_time", *LINEAGE_COLUMNS)  # fmt: skip


def series_folders(lake: Storage, unit: Unit) -> tuple[PurePath, PurePath]:
    """The `signals` and `trap_events` partitions of a series."""
    values = {
        "exchange": unit.exchange,
        "market": unit.market,
        "symbol_id": symbol_id(unit.symbol),
        "timeframe": unit.timeframe,
    }
    return partition_dir(lake.root, SIGNALS, values), partition_dir(lake.root, TRAP_EVENTS, values)


def _table(frame: pd.DataFrame, unit: Unit, dataset: Dataset) -> pa.Table:
    if frame.empty:
        return dataset.schema.empty_table()
    out = frame.copy()
    for name, value in unit.fields().items():
        if name != "dataset":
            out[name] = value
    out["ingested_at"] = pd.Timestamp(now_ms(), unit="ms")
    for name in TIMES:  # int ms from the lineage frame: timestamps, NONE_MS as null
        ms = out[name].to_numpy(dtype=np.int64)
        out[name] = np.where(ms == NONE_MS, np.datetime64("NaT"), ms.astype("datetime64[ms]"))
    columns = [f.name for f in dataset.schema]
    out = out[columns].astype({c: "object" for c in _BOOL | _TEXT if c in out})
    out = out.where(out.notna(), None)
    table = pa.Table.from_pandas(out, schema=dataset.schema, preserve_index=False)
    return table.replace_schema_metadata(None)  # read back as stored files are (no Int64)


def _compute(inputs: SeriesInputs, unit: Unit, options: str, start_ms: int):
    """(rows of the bars from `start_ms` on, every trap event), from the signal library."""
    if inputs.candles.empty:  # every candle gone (pruned): no bar has signals
        return pd.DataFrame(), pd.DataFrame()
    from vectorflow.signals import SignalOptions, signals_recompute  # numba: only when needed
    from vectorflow.signals.tpo import TpoSettings

    row_size = json.loads(options)["tpo_row_size"]
    chosen = SignalOptions(tpo=TpoSettings(row_size=row_size)) if row_size else SignalOptions()
    return signals_recompute(
        inputs.candles,
        timeframe=unit.timeframe,
        since=start_ms - 1,
        tpo_candles=inputs.tpo,
        tpo_timeframe=inputs.tpo_timeframe,
        open_interest=inputs.open_interest,
        funding=inputs.funding,
        options=chosen,
    )


def _with_lineage(frame: pd.DataFrame, lineage: pd.DataFrame, time_column: str) -> pd.DataFrame:
    """`frame` with the lineage of the bar at its `time_column` (an event: its confirming bar)."""
    at = frame.assign(_bar=ms_column(frame, time_column)) if len(frame) else frame.assign(_bar=0)
    joined = at.merge(lineage.rename(columns={"as_of": "_bar"}), on="_bar", how="left")
    return joined.drop(columns="_bar")


def _stored_events(lake: Storage, folder: PurePath) -> pd.DataFrame:
    def read() -> pa.Table:
        paths = [f.path for f in lake.files(folder, TRAP_EVENTS)]
        if not paths:
            return TRAP_EVENTS.schema.empty_table()
        return lake.parquet_dataset(paths, TRAP_EVENTS.schema).to_table()

    frame = reading_again(read).to_pandas()
    key = list(TRAP_EVENTS.key)  # an object store mid-replacement: the newest row per key
    return frame.sort_values("ingested_at").drop_duplicates(key, keep="last")


def first_difference(stored: pd.DataFrame, computed: pd.DataFrame) -> int | None:
    """The earliest confirm time (ms) at which stored and computed events differ (None: never)."""
    def hashes(frame: pd.DataFrame) -> np.ndarray:
        cols = frame[list(_EVENT_COLUMNS)].reset_index(drop=True)
        return pd.util.hash_pandas_object(cols, index=False).to_numpy()

    old, new = hashes(stored), hashes(computed)
    differ = np.r_[ms_column(stored, "confirm_time")[~np.isin(old, new)],
                   ms_column(computed, "confirm_time")[~np.isin(new, old)]]  # fmt: skip
    return int(differ.min()) if len(differ) else None


def _replace_in(settings: Settings, dataset: Dataset, folder, table: pa.Table, start: int) -> None:
    """Replace a partition's rows from `start` on with `table` (call under its lock)."""
    lake = settings.storage
    version = lake.open_version(folder, dataset)
    replace_from(lake, dataset, version, table, start, merge_rows=settings.lake.merge_rows,
                 merge_files=settings.lake.merge_files)  # fmt: skip
    version.publish(settings.lake.delete_grace_seconds)


def _replace_events(settings: Settings, unit: Unit, folder, events: pd.DataFrame) -> int:
    """Replace the stored events from the earliest that differs on; how many were written."""
    computed = _table(events, unit, TRAP_EVENTS).sort_by([("confirm_time", "ascending")])
    with settings.storage.lock(folder):
        start = first_difference(_stored_events(settings.storage, folder), computed.to_pandas())
        if start is None:
            return 0
        times = ms_column(computed.select(["confirm_time"]).to_pandas(), "confirm_time")
        tail = computed.slice(int(np.searchsorted(times, start)))
        _replace_in(settings, TRAP_EVENTS, folder, tail, start)
    return tail.num_rows


def _note_plan(report: UnitResult, plan: StalePlan, stored: Lineage) -> None:
    report.detail["stale_reason"] = plan.reason
    report.detail["stale_from"] = ms_to_iso(plan.start_ms) if plan.reason else None
    report.detail["stored_options"] = plan.stored_options
    replaced = stored.as_of >= (plan.start_ms or 0)
    report.detail["rows_replaced"] = int(replaced.sum()) if plan.start_ms is not None else 0


def update_signals(
    unit: Unit,
    settings: Settings,
    *,
    tpo_row_size: float | None = None,
    recompute_since: int | None = None,
) -> UnitResult:
    """Bring the stored signals of `unit` up to date: compute the new and stale bars (and every
    bar from `recompute_since` on, when given) and replace the stored rows from the earliest.

    The TPO row size is `tpo_row_size`, else the settings' `tpo_row_sizes[symbol]`, else the
    documented default derived from price; rows computed with another one are stale.
    """
    lake = settings.storage
    report = UnitResult(unit, detail={"events_written": 0, "last_as_of": None})
    signals_folder, events_folder = series_folders(lake, unit)
    with lake.lock(signals_folder):  # one run of a series at a time: it replaces what it read
        inputs = read_inputs(lake, unit)
        stored = stored_lineage(lake, signals_folder)
        if inputs.candles.empty and not len(stored):
            return report
        options = signal_options(settings, unit, tpo_row_size)
        lineage = bar_lineage(inputs, unit.timeframe, options)
        plan = stale_plan(lineage, stored, recompute_since)
        _note_plan(report, plan, stored)
        if plan.start_ms is None:
            return report
        if plan.reason:
            log.info("%s: %d stale bars from %s (%s); recomputing from there", unit.label,
                     plan.stale_bars, ms_to_iso(plan.start_ms), plan.describe())  # fmt: skip
        rows, events = _compute(inputs, unit, options, plan.start_ms)
        report.detail["events_written"] = _replace_events(
            settings, unit, events_folder, _with_lineage(events, lineage.frame(), "confirm_time")
        )
        table = _table(_with_lineage(rows, lineage.frame(), "as_of"), unit, SIGNALS)
        _replace_in(settings, SIGNALS, signals_folder, table, plan.start_ms)
    report.rows_written = table.num_rows
    if table.num_rows:
        report.first = ms_to_iso(plan.start_ms)
        report.last = report.detail["last_as_of"] = ms_to_iso(int(lineage.as_of[-1]))
    elif report.detail["rows_replaced"]:
        log.warning("%s: no candles stored any more: %d signal rows removed", unit.label,
                    report.detail["rows_replaced"])  # fmt: skip
    log.info("%s: %d signal rows, %d trap events", unit.label, report.rows_written,
             report.detail["events_written"])  # fmt: skip
    return report


def signal_units(units: list[Unit], settings: Settings) -> list[Unit]:
    """The units among `units` whose timeframe gets signals (`signal_timeframes`), as signal
    units, once each."""
    chosen = [Unit(u.exchange, u.market, u.symbol, u.timeframe, "signals")
              for u in units if u.timeframe in settings.signal_timeframes]  # fmt: skip
    return list(dict.fromkeys(chosen))


def signals_job(settings: Settings, units: list[Unit], executor: Executor) -> list[UnitResult]:
    """Bring the stored signals of each series (at the settings' `signal_timeframes`) up to
    date, concurrently; one result per signal unit."""
    return run_units(executor, update_signals, signal_units(units, settings), settings)


def stored_signal_series(settings: Settings) -> list[Unit]:
    """Every series with stored signals, and every configured series at a signal timeframe."""
    stored = read_view(settings.storage, "signals",
                       columns="DISTINCT exchange, market, symbol, timeframe")  # fmt: skip
    units = [Unit(*row) for row in stored.itertuples(index=False)]
    series = settings.series
    units += [Unit(e, implied_market(s), s, tf) for e in series.exchanges for s in series.symbols
              if implied_market(s) in series.markets for tf in series.timeframes]  # fmt: skip
    return [u for u in dict.fromkeys(units) if u.timeframe in settings.signal_timeframes]


def derivative_series(settings: Settings, results: list[UnitResult]) -> list[Unit]:
    """The candle series (at signal timeframes) of the perpetuals whose open interest or funding
    landed rows in `results`: the bars those rows cover are stale."""
    lake, units = settings.storage, []
    landed = {(r.unit.exchange, r.unit.symbol) for r in results
              if r.ok and r.rows_written and r.unit.dataset in ("open_interest", "funding_rates")}
    for exchange, symbol in sorted(landed):
        values = {"exchange": exchange, "market": "linear", "symbol_id": symbol_id(symbol)}
        pattern = partition_pattern(CANDLES, {k: safe_component(v) for k, v in values.items()})
        for folder in lake.folders(lake.root / "candles", pattern):
            timeframe = folder.name.split("=", 1)[1]
            units.append(Unit(exchange, "linear", symbol, timeframe))
    return units


def note_signals(results: list[UnitResult], signals: list[UnitResult], key) -> None:
    """Put on each result the signal rows its series wrote (`signal_rows`), and any signals
    failure as its error; `key(unit)` names the series a unit shares with its signals."""
    by_series: dict[object, list[UnitResult]] = {}
    for done in signals:
        by_series.setdefault(key(done.unit), []).append(done)
    for result in results:
        done = by_series.get(key(result.unit), [])
        result.detail["signal_rows"] = sum(d.rows_written for d in done)
        failed = [d for d in done if not d.ok]
        for d in failed:
            log.error("signals of %s failed: %s", d.unit.label, d.error)
        if failed:
            result.error = "; ".join(f"signals: {d.error}" for d in failed)


def series_state(settings: Settings, unit: Unit) -> StalePlan | None:
    """How far the stored signals of `unit` are current and why not further: the plan a run
    would follow now (nothing is computed or written); None when nothing is stored."""
    lake = settings.storage
    stored = stored_lineage(lake, series_folders(lake, unit)[0])
    if not len(stored):
        return None
    inputs = read_inputs(lake, unit)
    lineage = bar_lineage(inputs, unit.timeframe, signal_options(settings, unit))
    return stale_plan(lineage, stored)
