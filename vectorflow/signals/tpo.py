"""TPO / market profile of UTC sessions, from candles of 30 minutes or less.

Periods, rows, POC, value area (two-row or single-row), initial balance, range extension,
single prints, tails, poor high/low and the volume profile, with every choice the textbook
leaves open and a worked example: docs/signals.md#tpo-market-profile.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from vectorflow.errors import InvalidInput
from vectorflow.signals.inputs import DAY_MS, Candles, candle_arrays, to_ms
from vectorflow.signals.rows import DEFAULT_ROW_FRACTION, row_grids, to_rows
from vectorflow.timeframes import timeframe_ms

PERIOD_MS = 1_800_000
PERIODS = 48
LETTERS = string.ascii_uppercase + string.ascii_lowercase[:22]
MAX_ROWS = 200_000
NO_ROW = np.iinfo(np.int64).min
METHODS = ("two_row", "single_row")

# columns of the profile kernel's output (row indices, flags and counts)
(POC, VAL, VAH, IBL, IBH, EXT_UP, EXT_DOWN, TOP_COUNT, BOTTOM_COUNT) = range(9)
(SELL_TAIL, BUY_TAIL, SINGLES, TOTAL, VP_POC, VP_VAL, VP_VAH, ROW_MIN, ROW_MAX) = range(9, 18)
N_OUT = 18


@dataclass(frozen=True)
class TpoSettings:
    """How profiles are built: row size (or its default), value area share and method."""

    row_size: float | None = None
    tick_size: float | None = None
    row_fraction: float = DEFAULT_ROW_FRACTION
    value_area: float = 0.70
    method: str = "two_row"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidInput(f"value area method {self.method!r}; expected one of {METHODS}")
        if not 0 < self.value_area <= 1:
            raise InvalidInput(f"value area {self.value_area!r} must be in (0, 1]")
        for name in ("row_size", "tick_size"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InvalidInput(f"TPO {name} {value!r} must be positive")


def check_tpo_timeframe(timeframe: str) -> int:
    """Milliseconds of a timeframe usable for TPO (30m or less, dividing 30 minutes)."""
    step = timeframe_ms(timeframe)
    if PERIOD_MS % step:
        raise InvalidInput(f"TPO needs candles of 30 minutes or less, got {timeframe!r}")
    return step


@njit(cache=True)
def _poc(values: np.ndarray) -> int:
    """Row of the largest value; ties: closest to the profile's centre, then the lower row."""
    n = len(values)
    best = values.max()
    pick, pick_dist = -1, 1 << 62
    for i in range(n):
        if values[i] == best:
            dist = abs(2 * i - (n - 1))
            if dist < pick_dist:
                pick, pick_dist = i, dist
    return pick


@njit(cache=True)
def _value_area(values: np.ndarray, poc: int, fraction: float, step: int) -> tuple[int, int]:
    """Rows (low, high) of the value area grown from the POC `step` rows at a time."""
    n = len(values)
    total = values.sum()
    target = fraction * total - 1e-9 * total
    lo, hi, acc = poc, poc, values[poc]
    while acc < target:
        n_up, n_down = min(step, n - 1 - hi), min(step, lo)
        if n_up == 0 and n_down == 0:
            break
        up = values[hi + 1 : hi + 1 + n_up].sum()
        down = values[lo - n_down : lo].sum()
        if n_down == 0 or (n_up > 0 and up >= down):
            hi += n_up
            acc += up
        else:
            lo -= n_down
            acc += down
    return lo, hi


@njit(cache=True)
def _edge_run(counts: np.ndarray, start: int, direction: int) -> int:
    run, i = 0, start
    while 0 <= i < len(counts) and counts[i] == 1:
        run += 1
        i += direction
    return run


@njit(cache=True)
def _profile_one(p_num, p_lo, p_hi, c_lo, c_hi, c_vol, fraction, step, out):
    base, top = p_lo.min(), p_hi.max()
    n = top - base + 1
    counts = np.zeros(n)
    ibl, ibh = NO_ROW, NO_ROW
    for k in range(len(p_lo)):
        counts[p_lo[k] - base : p_hi[k] - base + 1] += 1.0
        if p_num[k] < 2:
            ibl = p_lo[k] if ibl == NO_ROW else min(ibl, p_lo[k])
            ibh = max(ibh, p_hi[k])
    out[:] = 0
    out[IBL], out[IBH] = ibl, ibh
    for k in range(len(p_lo)):
        if ibh != NO_ROW and p_num[k] >= 2:
            if p_hi[k] > ibh:
                out[EXT_UP] = 1
            if p_lo[k] < ibl:
                out[EXT_DOWN] = 1
    poc = _poc(counts)
    lo, hi = _value_area(counts, poc, fraction, step)
    out[POC], out[VAL], out[VAH] = base + poc, base + lo, base + hi
    out[TOP_COUNT], out[BOTTOM_COUNT] = int(counts[n - 1]), int(counts[0])
    out[SELL_TAIL], out[BUY_TAIL] = _edge_run(counts, n - 1, -1), _edge_run(counts, 0, 1)
    out[SINGLES], out[TOTAL] = (counts == 1).sum(), int(counts.sum())
    out[ROW_MIN], out[ROW_MAX] = base, top
    vols = np.zeros(n)
    for k in range(len(c_lo)):
        lo_k, hi_k = max(c_lo[k], base), min(c_hi[k], top)
        if hi_k >= lo_k and c_vol[k] > 0:
            vols[lo_k - base : hi_k - base + 1] += c_vol[k] / (hi_k - lo_k + 1)
    if vols.sum() > 0:
        vp = _poc(vols)
        vlo, vhi = _value_area(vols, vp, fraction, step)
        out[VP_POC], out[VP_VAL], out[VP_VAH] = base + vp, base + vlo, base + vhi
    else:
        out[VP_POC], out[VP_VAL], out[VP_VAH] = NO_ROW, NO_ROW, NO_ROW


@njit(cache=True)
def _profiles(p_off, p_num, p_lo, p_hi, c_off, c_lo, c_hi, c_vol, fraction, step, out):
    for s in range(len(p_off) - 1):
        pa, pb, ca, cb = p_off[s], p_off[s + 1], c_off[s], c_off[s + 1]
        _profile_one(
            p_num[pa:pb], p_lo[pa:pb], p_hi[pa:pb], c_lo[ca:cb], c_hi[ca:cb], c_vol[ca:cb],
            fraction, step, out[s],
        )  # fmt: skip


@dataclass(frozen=True)
class _Rows:
    """Sessions of candles mapped to integer rows: the kernel's input."""

    day: np.ndarray  # session day numbers (epoch days)
    units: np.ndarray  # row size per session, in grid units
    scale: np.ndarray  # 10 ** grid decimals per session
    c_off: np.ndarray
    c_lo: np.ndarray
    c_hi: np.ndarray
    c_vol: np.ndarray
    p_off: np.ndarray
    p_num: np.ndarray
    p_lo: np.ndarray
    p_hi: np.ndarray
    high: np.ndarray  # session high / low (raw prices)
    low: np.ndarray

    def price(self, rows: np.ndarray) -> np.ndarray:
        """Lower-edge prices of per-session rows (NaN for NO_ROW)."""
        ok = rows != NO_ROW
        return np.where(ok, np.where(ok, rows, 0) * self.units / self.scale, np.nan)


def _rows(c: Candles, days: np.ndarray | None, settings: TpoSettings) -> _Rows | None:
    ok = ~(np.isnan(c.high) | np.isnan(c.low) | (c.high < c.low))
    day_all = c.open_ms // DAY_MS
    if days is not None:
        ok &= np.isin(day_all, days)
    sel = np.flatnonzero(ok)
    if len(sel) == 0:
        return None
    open_ms, day = c.open_ms[sel], day_all[sel]
    s_start = np.flatnonzero(np.r_[True, np.diff(day) != 0])
    units_s, dec_s = row_grids(
        c.open[sel][s_start], settings.row_size, settings.tick_size, settings.row_fraction
    )
    sess = np.repeat(np.arange(len(s_start)), np.diff(np.r_[s_start, len(sel)]))
    scale_s = 10.0 ** dec_s.astype(np.float64)
    c_lo = to_rows(c.low[sel], scale_s[sess], units_s[sess])
    c_hi = to_rows(c.high[sel], scale_s[sess], units_s[sess])
    span = np.maximum.reduceat(c_hi, s_start) - np.minimum.reduceat(c_lo, s_start)
    if span.max() >= MAX_ROWS:
        raise InvalidInput(f"TPO row size too small: a session spans {int(span.max())} rows")
    pkey = open_ms // PERIOD_MS
    p_start = np.flatnonzero(np.r_[True, np.diff(pkey) != 0])
    high, low = c.high[sel], c.low[sel]
    return _Rows(
        day=day[s_start],
        units=units_s,
        scale=scale_s,
        c_off=np.r_[s_start, len(sel)].astype(np.int64),
        c_lo=c_lo,
        c_hi=c_hi,
        c_vol=np.nan_to_num(c.volume[sel], nan=0.0),
        p_off=np.r_[np.searchsorted(p_start, s_start), len(p_start)].astype(np.int64),
        p_num=(pkey[p_start] % PERIODS).astype(np.int64),
        p_lo=np.minimum.reduceat(c_lo, p_start),
        p_hi=np.maximum.reduceat(c_hi, p_start),
        high=np.maximum.reduceat(high, s_start),
        low=np.minimum.reduceat(low, s_start),
    )


def _kernel(rows: _Rows, settings: TpoSettings) -> np.ndarray:
    out = np.empty((len(rows.day), N_OUT), dtype=np.int64)
    step = 2 if settings.method == "two_row" else 1
    _profiles(
        rows.p_off, rows.p_num, rows.p_lo, rows.p_hi, rows.c_off, rows.c_lo, rows.c_hi,
        rows.c_vol, float(settings.value_area), step, out,
    )  # fmt: skip
    return out


def session_profiles(
    candles: Candles, settings: TpoSettings, *, days: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Profile every UTC session in `candles` (or only `days`, epoch day numbers).

    Returns arrays, one entry per session with candles, sorted by `day`: `day`, `row_size`,
    `poc`, `vah`, `val`, `ib_high`, `ib_low`, `range_ext_up`, `range_ext_down`, `poor_high`,
    `poor_low`, `selling_tail`, `buying_tail` (rows), `single_prints` (rows), `tpo_count`,
    `high`, `low` (raw session extremes), `vp_poc`, `vp_vah`, `vp_val`. Whether a session is
    complete at a given time is the caller's business (see `compute`).
    """
    rows = _rows(candles, days, settings)
    if rows is None:
        return {"day": np.empty(0, np.int64)}
    out = _kernel(rows, settings)
    ib = out[:, IBH] != NO_ROW
    return {
        "day": rows.day,
        "row_size": rows.units / rows.scale,
        "poc": rows.price(out[:, POC]),
        "vah": rows.price(out[:, VAH]),
        "val": rows.price(out[:, VAL]),
        "ib_high": rows.price(out[:, IBH]),
        "ib_low": rows.price(out[:, IBL]),
        "range_ext_up": np.where(ib, out[:, EXT_UP], -1),
        "range_ext_down": np.where(ib, out[:, EXT_DOWN], -1),
        "poor_high": out[:, TOP_COUNT] >= 2,
        "poor_low": out[:, BOTTOM_COUNT] >= 2,
        "selling_tail": np.where(out[:, SELL_TAIL] >= 2, out[:, SELL_TAIL], 0),
        "buying_tail": np.where(out[:, BUY_TAIL] >= 2, out[:, BUY_TAIL], 0),
        "single_prints": out[:, SINGLES],
        "tpo_count": out[:, TOTAL],
        "high": rows.high,
        "low": rows.low,
        "vp_poc": rows.price(out[:, VP_POC]),
        "vp_vah": rows.price(out[:, VP_VAH]),
        "vp_val": rows.price(out[:, VP_VAL]),
    }


def profile_levels(
    values: np.ndarray | list[float], *, fraction: float = 0.70, method: str = "two_row"
) -> tuple[int, int, int]:
    """(POC, value-area low, value-area high) indices of a profile of counts or volumes."""
    arr = np.asarray(values, dtype=np.float64)
    if method not in METHODS:
        raise InvalidInput(f"value area method {method!r}; expected one of {METHODS}")
    poc = int(_poc(arr))
    lo, hi = _value_area(arr, poc, float(fraction), 2 if method == "two_row" else 1)
    return poc, int(lo), int(hi)


@dataclass(frozen=True)
class TpoProfile:
    """One session's profile in full, rows ascending (for display and tests)."""

    session: pd.Timestamp
    developing: bool
    row_size: float
    rows: tuple[float, ...]
    counts: tuple[int, ...]
    letters: tuple[str, ...]
    poc: float
    vah: float
    val: float
    ib_high: float | None
    ib_low: float | None
    range_extension_up: bool
    range_extension_down: bool
    single_prints: tuple[float, ...]
    selling_tail: tuple[float, ...]
    buying_tail: tuple[float, ...]
    poor_high: bool
    poor_low: bool
    vp_poc: float | None
    vp_vah: float | None
    vp_val: float | None
    high: float
    low: float


def _opt(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def tpo_profile(
    candles: pd.DataFrame,
    *,
    timeframe: str,
    as_of: object,
    developing: bool = False,
    settings: TpoSettings = TpoSettings(),
) -> TpoProfile | None:
    """The last completed session before `as_of` (or the developing one), None without candles."""
    check_tpo_timeframe(timeframe)
    end = to_ms(as_of)
    c = candle_arrays(candles, timeframe, end=end)
    day = end // DAY_MS - (0 if developing else 1)
    rows = _rows(c, np.array([day]), settings)
    if rows is None:
        return None
    out = _kernel(rows, settings)[0]
    base, top = int(out[ROW_MIN]), int(out[ROW_MAX])
    counts = np.zeros(top - base + 1, dtype=np.int64)
    letters = [""] * len(counts)
    for num, lo, hi in zip(rows.p_num, rows.p_lo, rows.p_hi, strict=True):
        counts[lo - base : hi - base + 1] += 1
        for r in range(lo - base, hi - base + 1):
            letters[r] += LETTERS[num]
    price = rows.price(np.arange(base, top + 1))
    sell, buy = int(out[SELL_TAIL]), int(out[BUY_TAIL])
    level = {k: _opt(rows.price(out[k : k + 1])[0]) for k in (POC, VAH, VAL, IBH, IBL)}
    level |= {k: _opt(rows.price(out[k : k + 1])[0]) for k in (VP_POC, VP_VAH, VP_VAL)}
    return TpoProfile(
        session=pd.Timestamp(day * DAY_MS, unit="ms"),
        developing=developing,
        row_size=float(rows.units[0] / rows.scale[0]),
        rows=tuple(price.tolist()),
        counts=tuple(counts.tolist()),
        letters=tuple(letters),
        poc=level[POC],
        vah=level[VAH],
        val=level[VAL],
        ib_high=level[IBH],
        ib_low=level[IBL],
        range_extension_up=bool(out[EXT_UP]),
        range_extension_down=bool(out[EXT_DOWN]),
        single_prints=tuple(price[counts == 1].tolist()),
        selling_tail=tuple(price[len(price) - sell :].tolist()) if sell >= 2 else (),
        buying_tail=tuple(price[:buy].tolist()) if buy >= 2 else (),
        poor_high=bool(counts[-1] >= 2),
        poor_low=bool(counts[0] >= 2),
        vp_poc=level[VP_POC],
        vp_vah=level[VP_VAH],
        vp_val=level[VP_VAL],
        high=float(rows.high[0]),
        low=float(rows.low[0]),
    )
