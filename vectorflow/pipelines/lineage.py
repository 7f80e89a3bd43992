"""Lineage of stored signals: what each bar was computed from, and which stored bars are stale.

A bar's lineage (`vectorflow.lake.schema.LINEAGE`) is the signal code version, the options a run
chose, and the extent of every input at the bar's close: the candles closed by then (the
series' and its TPO candles: how many, and the newest `ingested_at` among them, which a
backfill, a filled gap or a corrected candle changes), the newest open-interest and funding
observation at or before it and the newest `ingested_at` among those. Each of these is a
running maximum or count, so a change to an input makes the bars from it on stale, and only
those. A run compares the lineage of the stored rows with the lineage the inputs give now and
recomputes from the earliest stale bar on (docs/signals.md#lineage-and-staleness).

Nothing here imports `vectorflow.signals` (numba): a run with nothing stale stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from vectorflow.lake.catalog import read_view, view_definitions
from vectorflow.lake.files import reading_again
from vectorflow.lake.schema import LINEAGE_COLUMNS, SIGNALS
from vectorflow.lake.storage import Storage
from vectorflow.lineage import code_version
from vectorflow.settings import Settings
from vectorflow.timeframes import timeframe_ms
from vectorflow.units import Unit

#: Why a stored bar is stale, in the order a bar's reason is chosen.
REASONS = ("code_changed", "options_changed", "missing_oi", "history_changed")
TIMES = ("candles_landed", "oi_through", "funding_through", "derivatives_landed")
NONE_MS = -1  # a null time, in the int64 ms frames below
_TPO_MAX_MS = 1_800_000


@dataclass(frozen=True)
class SeriesInputs:
    """What the signals of one series are computed from, as the lake holds it now."""

    candles: pd.DataFrame  # the series' candles, by open time
    tpo: pd.DataFrame | None  # its finest candles of 30 minutes or less, when not its own
    tpo_timeframe: str | None
    open_interest: pd.DataFrame | None
    funding: pd.DataFrame | None


def _finest_tpo_candles(lake: Storage, unit: Unit) -> tuple[pd.DataFrame | None, str | None]:
    where = {"exchange": unit.exchange, "market": unit.market, "symbol": unit.symbol}
    stored = read_view(lake, "candles", where, "DISTINCT timeframe")
    fine = sorted(
        (tf for tf in stored.get("timeframe", []) if timeframe_ms(tf) <= _TPO_MAX_MS),
        key=timeframe_ms,
    )
    if not fine or fine[-1] == unit.timeframe and timeframe_ms(unit.timeframe) <= _TPO_MAX_MS:
        return None, None  # the series' own candles serve for TPO, or there is nothing fine
    tpo = read_view(lake, "candles", where | {"timeframe": fine[0]})
    return tpo.sort_values("open_time").reset_index(drop=True), fine[0]


def _derivatives(lake: Storage, unit: Unit) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    if unit.market != "linear":
        return None, None
    where = {"exchange": unit.exchange, "symbol": unit.symbol}
    views = view_definitions(lake)
    found = []
    for name in ("open_interest", "funding_rates"):
        frame = read_view(lake, name, where) if name in views else None
        found.append(frame if frame is not None and len(frame) else None)
    return found[0], found[1]


def read_inputs(lake: Storage, unit: Unit) -> SeriesInputs:
    """The series' candles, TPO candles, and for perpetuals its open interest and funding."""
    where = {"exchange": unit.exchange, "market": unit.market, "symbol": unit.symbol,
             "timeframe": unit.timeframe}  # fmt: skip
    candles = read_view(lake, "candles", where).sort_values("open_time").reset_index(drop=True)
    if candles.empty:
        return SeriesInputs(candles, None, None, None, None)
    tpo, tpo_timeframe = _finest_tpo_candles(lake, unit)
    return SeriesInputs(candles, tpo, tpo_timeframe, *_derivatives(lake, unit))


def signal_options(settings: Settings, unit: Unit, tpo_row_size: float | None = None) -> str:
    """The options a run chooses for `unit`, as canonical JSON (what rows record and compare).

    The TPO row size is `tpo_row_size`, else the settings' `tpo_row_sizes[symbol]`, else null
    (the documented default derived from price). Every other parameter is the code's default,
    covered by the code version.
    """
    row_size = tpo_row_size or settings.tpo_row_sizes.get(unit.symbol)
    return json.dumps({"tpo_row_size": row_size}, sort_keys=True, separators=(",", ":"))


_NAT = np.iinfo(np.int64).min


def ms_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A timestamp column as int64 UTC ms (NONE_MS for nulls)."""
    col = frame[column]
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    values = col.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    return np.where(values == _NAT, NONE_MS, values)


@dataclass(frozen=True)
class Lineage:
    """What each bar was (stored) or would now be (current) computed from: one array element
    per bar, `as_of` ascending; times in int64 ms, NONE_MS for null (the LINEAGE columns)."""

    as_of: np.ndarray
    code_version: np.ndarray  # object arrays: text or None
    signal_options: np.ndarray
    candles_seen: np.ndarray
    candles_landed: np.ndarray
    oi_through: np.ndarray
    funding_through: np.ndarray
    derivatives_landed: np.ndarray

    def __len__(self) -> int:
        return len(self.as_of)

    def frame(self) -> pd.DataFrame:
        """`as_of` and the LINEAGE columns as a DataFrame."""
        return pd.DataFrame({name: getattr(self, name) for name in ("as_of", *LINEAGE_COLUMNS)})


def _through(frame: pd.DataFrame | None, column: str, closes: np.ndarray):
    """(newest observation time, newest `ingested_at` among observations) at or before each."""
    if frame is None:
        return np.full(len(closes), NONE_MS), np.full(len(closes), NONE_MS)
    times = ms_column(frame, column)
    order = np.argsort(times, kind="stable")
    times, landed = times[order], np.maximum.accumulate(ms_column(frame, "ingested_at")[order])
    k = np.searchsorted(times, closes, side="right")
    has = k > 0
    last = np.maximum(k - 1, 0)
    return np.where(has, times[last], NONE_MS), np.where(has, landed[last], NONE_MS)


def bar_lineage(inputs: SeriesInputs, timeframe: str, options: str) -> Lineage:
    """The lineage every bar of the series has now."""
    closes = ms_column(inputs.candles, "open_time") + timeframe_ms(timeframe)
    seen = np.arange(1, len(closes) + 1, dtype=np.int64)
    landed = np.maximum.accumulate(ms_column(inputs.candles, "ingested_at"))
    if inputs.tpo is not None and len(inputs.tpo):
        tpo_closes = ms_column(inputs.tpo, "open_time") + timeframe_ms(inputs.tpo_timeframe)
        tpo_landed = np.maximum.accumulate(ms_column(inputs.tpo, "ingested_at"))
        k = np.searchsorted(tpo_closes, closes, side="right")
        seen = seen + k
        landed = np.maximum(landed, np.where(k > 0, tpo_landed[np.maximum(k - 1, 0)], NONE_MS))
    oi_through, oi_landed = _through(inputs.open_interest, "time", closes)
    funding_through, funding_landed = _through(inputs.funding, "funding_time", closes)
    constant = {name: np.full(len(closes), value, dtype=object)
                for name, value in (("code_version", code_version()),
                                    ("signal_options", options))}  # fmt: skip
    return Lineage(closes, **constant, candles_seen=seen, candles_landed=landed,
                   oi_through=oi_through, funding_through=funding_through,
                   derivatives_landed=np.maximum(oi_landed, funding_landed))  # fmt: skip


def lineage_of(table: pa.Table) -> Lineage:
    """The lineage of stored rows (`as_of`, the LINEAGE columns, `ingested_at`), one per bar:
    the newest `ingested_at` wins, as in the views."""
    def ints(name: str) -> np.ndarray:
        column = table.column(name).cast(pa.int64()).fill_null(NONE_MS)
        return column.to_numpy().astype(np.int64)

    as_of, order = ints("as_of"), None
    if len(np.unique(as_of)) < len(as_of):  # an object store mid-replacement
        order = np.lexsort((ints("ingested_at"), as_of))
        keep = np.r_[as_of[order][1:] != as_of[order][:-1], True]
        order = order[keep]
    else:
        order = np.argsort(as_of, kind="stable")
    values = {name: table.column(name).to_numpy(zero_copy_only=False).astype(object)[order]
              for name in ("code_version", "signal_options")}  # fmt: skip
    values |= {name: ints(name)[order] for name in ("candles_seen", *TIMES)}
    return Lineage(as_of[order], **values)


def stored_lineage(lake: Storage, folder) -> Lineage:
    """The lineage of the rows stored in a signals partition (read from its files alone)."""
    columns = ["as_of", *LINEAGE_COLUMNS, "ingested_at"]

    def read() -> pa.Table:
        paths = [f.path for f in lake.files(folder, SIGNALS)]
        if not paths:
            return SIGNALS.schema.empty_table().select(columns)
        return lake.parquet_dataset(paths, SIGNALS.schema).to_table(columns=columns)

    return lineage_of(reading_again(read))


@dataclass
class StalePlan:
    """Which bars of a series a run computes: from `start_ms` on (None: none), and why."""

    start_ms: int | None = None
    reason: str | None = None  # why the earliest stale bar is stale (None: only new bars)
    stale_bars: int = 0  # stored bars whose lineage differs, or with no candle any more
    new_bars: int = 0  # bars after the last stored one
    stored_bars: int = 0
    current_through: int | None = None  # the last stored bar before the first stale one
    by_reason: dict[str, int] = field(default_factory=dict)
    stored_options: str | None = None  # the options of the earliest stale bar

    def describe(self) -> str:
        """`missing_oi: 24 bars` and the like (empty when nothing is stale)."""
        return ", ".join(f"{r}: {n} bars" for r, n in self.by_reason.items() if n)


_FIELDS = {  # the fields each reason compares, in the order a bar's reason is chosen
    "code_changed": ("code_version",),
    "options_changed": ("signal_options",),
    "missing_oi": ("oi_through", "funding_through"),
    "history_changed": ("candles_seen", "candles_landed", "derivatives_landed"),
}


def _reasons(current: Lineage, stored: Lineage, at: np.ndarray, matched: np.ndarray):
    """Why each stored bar is stale ('' when it is not); `at[i]`: its bar in `current`."""
    reasons = np.full(len(stored), "history_changed", dtype=object)  # unmatched: candle gone
    c, m = at[matched], np.flatnonzero(matched)
    conditions = [
        np.logical_or.reduce([getattr(current, f)[c] != getattr(stored, f)[m] for f in fields])
        for fields in _FIELDS.values()
    ]
    reasons[m] = np.select(conditions, list(_FIELDS), default="") if len(m) else reasons[m]
    return reasons


def _earliest(times: np.ndarray, mask: np.ndarray) -> int | None:
    return int(times[mask][0]) if mask.any() else None


def stale_plan(current: Lineage, stored: Lineage, force_from_ms: int | None = None) -> StalePlan:
    """Compare the lineage of the stored bars with the lineage the inputs give now.

    A bar with no stored row is new after the last stored bar, and stale (`history_changed`:
    a backfill or a filled gap) before it. `force_from_ms` recomputes every bar from then on.
    """
    at = np.minimum(np.searchsorted(current.as_of, stored.as_of), max(len(current) - 1, 0))
    matched = (current.as_of[at] == stored.as_of) if len(current) else np.zeros(len(stored), bool)
    reasons = _reasons(current, stored, at, matched)
    has_row = np.zeros(len(current), dtype=bool)
    has_row[at[matched]] = True
    last = stored.as_of[-1] if len(stored) else np.iinfo(np.int64).min
    new = ~has_row & (current.as_of > last)
    missing = ~has_row & ~new  # a backfill, a filled gap
    stale = reasons != ""
    plan = StalePlan(stale_bars=int(stale.sum() + missing.sum()), new_bars=int(new.sum()),
                     stored_bars=len(stored))  # fmt: skip
    plan.by_reason = {r: int((reasons == r).sum()) for r in REASONS}
    plan.by_reason["history_changed"] += int(missing.sum())
    firsts = [_earliest(stored.as_of, stale), _earliest(current.as_of, missing)]
    first_stale = min((t for t in firsts if t is not None), default=None)
    if first_stale is not None:
        i = int(np.searchsorted(stored.as_of, first_stale))
        from_stored = i < len(stored) and stored.as_of[i] == first_stale and stale[i]
        plan.reason = str(reasons[i]) if from_stored else "history_changed"
        plan.stored_options = stored.signal_options[i] if from_stored else None
    forced = current.as_of >= force_from_ms if force_from_ms is not None else None
    starts = [first_stale, _earliest(current.as_of, new),
              _earliest(current.as_of, forced) if forced is not None else None]
    plan.start_ms = min((t for t in starts if t is not None), default=None)
    kept = stored.as_of if plan.start_ms is None else stored.as_of[stored.as_of < plan.start_ms]
    plan.current_through = int(kept[-1]) if len(kept) else None
    return plan
