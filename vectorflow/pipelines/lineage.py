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


def ms_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A timestamp column as int64 UTC ms (NONE_MS for nulls)."""
    col = frame[column]
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    values = col.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    return np.where(col.isna().to_numpy(), NONE_MS, values)


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


def bar_lineage(inputs: SeriesInputs, timeframe: str, options: str) -> pd.DataFrame:
    """The lineage every bar of the series has now: `as_of` (ms) and the LINEAGE columns."""
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
    return pd.DataFrame({
        "as_of": closes,
        "code_version": code_version(),
        "signal_options": options,
        "candles_seen": seen,
        "candles_landed": landed,
        "oi_through": oi_through,
        "funding_through": funding_through,
        "derivatives_landed": np.maximum(oi_landed, funding_landed),
    })  # fmt: skip


def lineage_frame(table: pa.Table) -> pd.DataFrame:
    """`as_of` and the LINEAGE columns of stored rows, times as int64 ms (NONE_MS for null), one
    row per bar (the newest `ingested_at` wins, as in the views)."""
    frame = table.to_pandas()
    if len(frame) and frame["as_of"].duplicated().any():  # an object store mid-replacement
        frame = frame.sort_values("ingested_at").drop_duplicates("as_of", keep="last")
    out = pd.DataFrame({"as_of": ms_column(frame, "as_of")})
    for name in ("code_version", "signal_options"):
        out[name] = frame[name].to_numpy(dtype=object)
    out["candles_seen"] = frame["candles_seen"].fillna(NONE_MS).to_numpy(dtype=np.int64)
    for name in TIMES:
        out[name] = ms_column(frame, name)
    return out.sort_values("as_of").reset_index(drop=True)


def stored_lineage(lake: Storage, folder) -> pd.DataFrame:
    """The lineage of the rows stored in a signals partition (read from its files alone)."""
    columns = ["as_of", *LINEAGE_COLUMNS, "ingested_at"]

    def read() -> pa.Table:
        paths = [f.path for f in lake.files(folder, SIGNALS)]
        if not paths:
            return SIGNALS.schema.empty_table().select(columns)
        return lake.parquet_dataset(paths, SIGNALS.schema).to_table(columns=columns)

    return lineage_frame(reading_again(read))


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


def _reasons(both: pd.DataFrame) -> np.ndarray:
    """Why each bar (current `_c` beside stored `_s` columns) is stale ('' when it is not)."""
    def differs(*names: str) -> np.ndarray:
        return np.logical_or.reduce([both[f"{n}_c"].to_numpy() != both[f"{n}_s"].to_numpy()
                                     for n in names])  # fmt: skip

    merged = both["_merge"].to_numpy()
    present = merged == "both"
    conditions = [
        present & differs("code_version"),
        present & differs("signal_options"),
        present & differs("oi_through", "funding_through"),
        present & differs("candles_seen", "candles_landed", "derivatives_landed"),
        merged == "right_only",  # stored, but its candle is gone
    ]
    return np.select(conditions, [*REASONS, "history_changed"], default="")


def stale_plan(
    current: pd.DataFrame, stored: pd.DataFrame, force_from_ms: int | None = None
) -> StalePlan:
    """Compare the lineage of the stored bars with the lineage the inputs give now.

    A bar with no stored row is new after the last stored bar, and stale (`history_changed`:
    a backfill or a filled gap) before it. `force_from_ms` recomputes every bar from then on.
    """
    plan = StalePlan(stored_bars=len(stored))
    last_stored = int(stored["as_of"].iloc[-1]) if len(stored) else None
    both = current.merge(stored, on="as_of", how="outer", suffixes=("_c", "_s"), indicator=True)
    both = both.sort_values("as_of").reset_index(drop=True)
    new = both["_merge"].to_numpy() == "left_only"
    if last_stored is not None:
        new &= both["as_of"].to_numpy() > last_stored
    reasons = _reasons(both)
    missing = (both["_merge"].to_numpy() == "left_only") & ~new
    reasons = np.where(missing, "history_changed", reasons)
    stale = reasons != ""
    plan.stale_bars, plan.new_bars = int(stale.sum()), int(new.sum())
    plan.by_reason = {r: int((reasons == r).sum()) for r in REASONS}
    times = both["as_of"].to_numpy()
    starts = [int(times[stale][0])] if stale.any() else []
    starts += [int(times[new][0])] if new.any() else []
    if stale.any():
        first = int(np.flatnonzero(stale)[0])
        plan.reason = str(reasons[first])
        options = both["signal_options_s"].iloc[first]
        plan.stored_options = options if isinstance(options, str) else None
    if force_from_ms is not None and len(current):
        forced = current["as_of"].to_numpy()
        forced = forced[forced >= force_from_ms]
        starts += [int(forced[0])] if len(forced) else []
    plan.start_ms = min(starts) if starts else None
    kept = stored["as_of"].to_numpy()
    if plan.start_ms is not None:
        kept = kept[kept < plan.start_ms]
    plan.current_through = int(kept[-1]) if len(kept) else None
    return plan
