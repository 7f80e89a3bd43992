"""The payload's `derivatives` section: open interest and funding of a perpetual as of `as_of`.

Computed by the signals library's own open-interest functions (vectorflow.signals.open_interest)
from the lake's `open_interest` and `funding_rates` rows at or before `as_of`, so the figures
equal the stored signals' columns (`oi_change`, `oi_change_24h`, `price_change`, `oi_quadrant`,
`oi_zscore`, `funding_annualized`) of a bar whose signals were computed with that open interest,
whenever they were computed. The z-score and the funding decile look back 30 days: rows from
DERIVATIVES_LOOKBACK_MS before the first as_of are read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vectorflow.lake.schema import FUNDING_RATES, OPEN_INTEREST
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.reads import partition_folders, read_rows, symbol_id
from vectorflow.signals.inputs import candle_arrays
from vectorflow.signals.open_interest import (
    OiSettings,
    max_age,
    oi_at,
    oi_signals,
    prepare_funding,
    prepare_oi,
)
from vectorflow.timeframes import ms_to_iso, timeframe_ms
from vectorflow.units import Unit

DERIVATIVES_LOOKBACK_MS = 32 * 86_400_000
SOURCE = "open_interest, funding_rates"
_FIELDS = (
    "oi_change",
    "oi_change_24h",
    "price_change",
    "oi_quadrant",
    "oi_quadrant_24h",
    "oi_zscore",
    "funding_annualized",
    "crowded_longs",
    "squeeze_fuel",
)


def read_derivatives(
    lake: Storage, unit: Unit, start_ms: int, end_ms: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(open interest, funding) rows of a perpetual in [start, end] (every OI period)."""
    values = {"exchange": unit.exchange, "symbol_id": symbol_id(unit.symbol)}
    oi = read_rows(
        lake,
        OPEN_INTEREST,
        partition_folders(lake, OPEN_INTEREST, values),
        unit.symbol,
        start_ms,
        end_ms + 1,
        key=("period", "time"),
    )
    funding = read_rows(
        lake, FUNDING_RATES, partition_folders(lake, FUNDING_RATES, values), unit.symbol,
        start_ms, end_ms + 1,
    )  # fmt: skip
    return oi, funding


def _value(values: np.ndarray, i: int) -> object:
    value = values[i]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def derivative_sections(
    unit: Unit,
    candles: pd.DataFrame,
    oi: pd.DataFrame,
    funding: pd.DataFrame,
    as_ofs: list[int],
    settings: OiSettings | None = None,
) -> dict[int, dict]:
    """The derivatives section of each as_of from candles, OI and funding rows up to it."""
    at = np.array(sorted(set(as_ofs)), dtype=np.int64)
    settings = settings or OiSettings()
    if unit.market != "linear":
        note = {"source": SOURCE, "unavailable": "a spot market has no open interest or funding"}
        return {int(a): dict(note) for a in at}
    end = int(at[-1]) if len(at) else None
    prepared = prepare_oi(oi if len(oi) else None, end, settings)
    rates = prepare_funding(funding if len(funding) else None, end, settings)
    step = timeframe_ms(unit.timeframe)
    age = max_age(settings, step)
    if prepared is None or candles.empty:
        idx = np.full(len(at), -1)
    else:
        idx = oi_at(prepared, at, age)
    columns = {}
    if prepared is not None and not candles.empty:
        columns = oi_signals(candle_arrays(candles, unit.timeframe), at, prepared, rates, settings)
    funding_idx = np.full(len(at), -1)
    if rates is not None:
        funding_idx = np.searchsorted(rates.times, at, side="right") - 1
    out = {}
    for i, as_of in enumerate(at.tolist()):
        if idx[i] < 0:
            out[as_of] = {
                "source": SOURCE,
                "unavailable": f"no open interest within {age // 60_000} minutes",
            }
        else:
            out[as_of] = _section(prepared, int(idx[i]), columns, i)
            if funding_idx[i] >= 0:
                out[as_of]["funding_time"] = ms_to_iso(int(rates.times[funding_idx[i]]))
    return out


def _section(oi, j: int, columns: dict, i: int) -> dict:
    """The section of the i-th as_of, whose latest open interest is observation j."""
    section = {
        "time": ms_to_iso(int(oi.times[j])),
        "source": SOURCE,
        "open_interest": float(oi.oi[j]),
        "open_interest_value": _value(oi.value, j),
    }
    return section | {name: _value(columns[name], i) for name in _FIELDS}
