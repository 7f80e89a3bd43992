"""The signals row of a series at each as_of: the stored one, else computed as the store would.

A stored row (the `signals` dataset) was computed from data at or before its `as_of` only. Bars
without one get `vectorflow.signals.signals_history` over what the signals pipeline reads (every
stored candle of the series up to the bar, the finest stored candles of 30 minutes or less for
the TPO, open interest and funding for perpetuals), so a computed row equals the one the
pipeline would store. The row of an as_of is that of the last bar closed at or before it.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from vectorflow.lake.schema import SIGNALS
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.inputs import plain_value
from vectorflow.playbooks.reads import (
    partition_folders,
    read_candles,
    read_rows,
    series_values,
    stored_timeframes,
)
from vectorflow.timeframes import floor_ms, timeframe_ms
from vectorflow.units import Unit

log = logging.getLogger(__name__)

_TPO_MAX_MS = 1_800_000  # TPO profiles need candles of 30 minutes or less


def signal_time(as_of_ms: int, timeframe: str) -> int:
    """Close time of the last bar of `timeframe` closed at or before as_of."""
    return floor_ms(as_of_ms, timeframe)


def _row(values: dict) -> dict[str, object]:
    row = {k: plain_value(v) for k, v in values.items()}
    for name in ("ingested_at", "exchange", "market", "symbol", "timeframe"):
        row.pop(name, None)
    return row | {"as_of_ms": row["as_of"]}


def stored_signals(lake: Storage, unit: Unit, times: list[int]) -> dict[int, dict]:
    """Stored signals rows of `unit` at these bar close times (those that exist)."""
    if not times:
        return {}
    folders = partition_folders(lake, SIGNALS, series_values(unit))
    try:
        frame = read_rows(lake, SIGNALS, folders, unit.symbol, min(times), max(times) + 1)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # a file of an incompatible schema
        log.warning("%s: stored signals unreadable (%s); computing them", unit.label, exc)
        return {}
    frame = frame[frame["as_of"].isin(times)]
    return {r["as_of"]: r for r in map(_row, frame.to_dict("records"))}


def _tpo_candles(lake: Storage, unit: Unit, end: int) -> tuple[pd.DataFrame | None, str | None]:
    """The finest stored candles of 30 minutes or less, as the signals pipeline picks them."""
    fine = [tf for tf in stored_timeframes(lake, unit) if timeframe_ms(tf) <= _TPO_MAX_MS]
    own = timeframe_ms(unit.timeframe) <= _TPO_MAX_MS
    if not fine or fine[-1] == unit.timeframe and own:
        return None, None  # the series' own candles serve, or there is nothing fine
    tpo_unit = Unit(unit.exchange, unit.market, unit.symbol, fine[0])
    tpo = read_candles(lake, tpo_unit, 0, end)
    return (tpo, fine[0]) if len(tpo) else (None, None)


def computed_signals(
    lake: Storage,
    unit: Unit,
    times: list[int],
    derivatives: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    *,
    tpo_row_size: float | None = None,
) -> dict[int, dict]:
    """Signals rows at these bar close times computed from the lake ({} where impossible)."""
    from vectorflow.signals import SignalOptions, signals_history
    from vectorflow.signals.tpo import TpoSettings

    if not times:
        return {}
    end = max(times)
    candles = read_candles(lake, unit, 0, end)
    if candles.empty:
        return {}
    tpo, tpo_timeframe = _tpo_candles(lake, unit, end)
    oi, funding = derivatives if derivatives is not None else (None, None)
    options = SignalOptions(tpo=TpoSettings(row_size=tpo_row_size)) if tpo_row_size else None
    try:
        frame = signals_history(
            candles,
            timeframe=unit.timeframe,
            start=min(times) - 1,
            end=end,
            tpo_candles=tpo,
            tpo_timeframe=tpo_timeframe,
            open_interest=oi if oi is not None and len(oi) else None,
            funding=funding if funding is not None and len(funding) else None,
            options=options or SignalOptions(),
        )
    except Exception as exc:  # noqa: BLE001 - a signal bug must not stop the playbook
        log.warning("%s: signals not computed (%s); candles only", unit.label, exc)
        return {}
    stamps = frame["as_of"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    frame = frame.assign(as_of=stamps)
    wanted = set(times)
    rows = (_row(r) for r in frame[frame["as_of"].isin(wanted)].to_dict("records"))
    return {r["as_of"]: r for r in rows}


def signal_rows(
    lake: Storage,
    unit: Unit,
    as_ofs: list[int],
    derivatives: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    *,
    tpo_row_size: float | None = None,
) -> dict[int, dict]:
    """The signals row of each as_of (keyed by as_of; {} where none can be had)."""
    times = {a: signal_time(a, unit.timeframe) for a in as_ofs}
    found = stored_signals(lake, unit, sorted(set(times.values())))
    missing = sorted(set(times.values()) - set(found))
    if missing:
        found |= computed_signals(lake, unit, missing, derivatives, tpo_row_size=tpo_row_size)
    return {a: found.get(t, {}) for a, t in times.items()}
