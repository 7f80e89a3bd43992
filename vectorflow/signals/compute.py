"""The signal set of one series at a time `as_of`, and per closed bar for a range of bars.

`signals_at`, `signals_history`, `trap_events` and `signals_update` are pure functions over
DataFrames (no I/O, no Prefect) that use only data at or before `as_of`; indicators with memory
run from the first candle given, so callers pass a series' whole stored history. Inputs,
outputs and every stored column: docs/signals.md ("From Python", "Stored columns").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict, Unpack

import numpy as np
import pandas as pd

from vectorflow.errors import InvalidInput
from vectorflow.signals import open_interest as oi_mod
from vectorflow.signals import regime, tpo, traps
from vectorflow.signals.inputs import (
    DAY_MS,
    Candles,
    candle_arrays,
    ms_to_datetime,
    take,
    time_column_ms,
    to_ms,
)
from vectorflow.timeframes import TIMEFRAMES, timeframe_ms

STORED_COLUMNS: tuple[str, ...] = (
    "tpo_session", "tpo_row_size", "tpo_poc", "tpo_vah", "tpo_val", "tpo_ib_high", "tpo_ib_low",
    "tpo_poor_high", "tpo_poor_low", "vp_poc", "vp_vah", "vp_val",
    "regime", "adx", "plus_di", "minus_di", "natr", "natr_rank",
    "last_trap_type", "last_trap_time", "last_trap_level",
    "oi_quadrant", "oi_change", "oi_change_24h", "price_change", "oi_zscore", "funding_annualized",
)  # fmt: skip
EXTRA_COLUMNS: tuple[str, ...] = (
    "tpo_range_ext_up", "tpo_range_ext_down", "tpo_single_prints", "tpo_selling_tail",
    "tpo_buying_tail", "atr", "last_trap_side", "last_trap_source", "price_change_24h",
    "oi_quadrant_24h", "oi_to_volume", "oi_to_volume_24h", "funding_top_decile",
    "crowded_longs", "squeeze_fuel",
)  # fmt: skip
TPO_LEVELS = ("row_size", "poc", "vah", "val", "ib_high", "ib_low", "vp_poc", "vp_vah", "vp_val")
DEV_COLUMNS: tuple[str, ...] = ("tpo_dev_session",) + tuple(
    f"tpo_dev_{k}" for k in TPO_LEVELS + ("poor_high", "poor_low")
)
NONE = np.empty(0)
EMPTY_SESSIONS = {"day": np.empty(0, dtype=np.int64)}
TRAP_EVENT_COLUMNS: tuple[str, ...] = (
    "type", "side", "level", "level_source", "breakout_time", "confirm_time",
    "breakout_volume_ratio", "oi_change", "funding_sign", "extreme", "invalidated_time",
)  # fmt: skip


@dataclass(frozen=True)
class SignalOptions:
    """Parameters of every signal family; defaults as in docs/signals.md."""

    tpo: tpo.TpoSettings = field(default_factory=tpo.TpoSettings)
    regime: regime.RegimeSettings = field(default_factory=regime.RegimeSettings)
    traps: traps.TrapSettings = field(default_factory=traps.TrapSettings)
    oi: oi_mod.OiSettings = field(default_factory=oi_mod.OiSettings)
    developing: bool = False
    extras: bool = False


@dataclass(frozen=True)
class _Series:
    """Everything about one series that does not depend on the evaluation time."""

    c: Candles
    tpo: Candles | None
    sessions: dict[str, np.ndarray]
    ind: regime.Wilder
    natr: np.ndarray
    trend: np.ndarray
    events: traps.TrapEvents
    oi: oi_mod.OpenInterest | None
    funding: oi_mod.Funding | None


def _infer_timeframe(open_ms: np.ndarray) -> str:
    steps = np.diff(open_ms)
    steps = steps[steps > 0]
    by_ms = {timeframe_ms(tf): tf for tf in TIMEFRAMES}
    if len(steps) and int(steps.min()) in by_ms:
        return by_ms[int(steps.min())]
    raise InvalidInput("cannot tell the TPO candles' timeframe; pass tpo_timeframe")


def _tpo_candles(c, timeframe, tpo_candles, tpo_timeframe, end) -> Candles | None:
    if tpo_candles is None:
        return c if tpo.PERIOD_MS % timeframe_ms(timeframe) == 0 else None
    if len(tpo_candles) == 0:
        return None
    if tpo_timeframe is None:
        opened = np.sort(time_column_ms(tpo_candles, "open_time"))
        tpo_timeframe = _infer_timeframe(opened if end is None else opened[opened < end])
    tf = tpo_timeframe
    tpo.check_tpo_timeframe(tf)
    return candle_arrays(tpo_candles, tf, end=end)


def _session_at(sessions: dict[str, np.ndarray], days: np.ndarray) -> np.ndarray:
    """Row of each day in the session table (-1 when that day has no profile)."""
    known = sessions["day"]
    if len(known) == 0:
        return np.full(len(days), -1)
    pos = np.minimum(np.searchsorted(known, days), len(known) - 1)
    return np.where(known[pos] == days, pos, -1)


def _levels(c: Candles, sessions: dict[str, np.ndarray], s: traps.TrapSettings) -> dict:
    rh, rl = traps.rolling_levels(c.high, c.low, s.lookback)
    ph, pl = traps.prior_day_levels(c.open_ms, c.high, c.low)
    levels = {"rolling_high": rh, "rolling_low": rl, "prior_session_high": ph}
    levels["prior_session_low"] = pl
    if len(sessions["day"]):
        row = _session_at(sessions, c.open_ms // DAY_MS - 1)
        for name in ("vah", "val", "ib_high", "ib_low"):
            levels[name] = take(sessions[name], row)
    return levels


def _prepare(
    candles: pd.DataFrame,
    timeframe: str,
    end: int | None,
    *,
    tpo_candles: pd.DataFrame | None = None,
    tpo_timeframe: str | None = None,
    open_interest: pd.DataFrame | None = None,
    funding: pd.DataFrame | None = None,
    options: SignalOptions | None = None,
) -> tuple[_Series, SignalOptions]:
    """Everything about the series cut at `end` that does not depend on the evaluation time."""
    opts = options or SignalOptions()
    c = candle_arrays(candles, timeframe, end=end)
    tpo_c = _tpo_candles(c, timeframe, tpo_candles, tpo_timeframe, end)
    sessions = tpo.session_profiles(tpo_c, opts.tpo) if tpo_c is not None else EMPTY_SESSIONS
    ind = regime.wilder(c.high, c.low, c.close, opts.regime.period)
    with np.errstate(divide="ignore", invalid="ignore"):
        natr = ind.atr / c.close
    events = traps.find_traps(
        c.high, c.low, c.close, natr, _levels(c, sessions, opts.traps), opts.traps
    )
    series = _Series(
        c=c,
        tpo=tpo_c,
        sessions=sessions,
        ind=ind,
        natr=natr,
        trend=regime.trend_states(ind, opts.regime),
        events=events,
        oi=oi_mod.prepare_oi(open_interest, end, opts.oi),
        funding=oi_mod.prepare_funding(funding, end, opts.oi),
    )
    return series, opts


def _tpo_columns(sessions: dict, days: np.ndarray, prefix: str, vp_prefix: str, extras: bool):
    """TPO columns of the sessions starting on `days` (null where a day has no profile)."""
    row = _session_at(sessions, days)
    ok = row >= 0
    out = {f"{prefix}session": ms_to_datetime(np.where(ok, days * DAY_MS, -1))}
    for name in TPO_LEVELS:
        key = f"{vp_prefix}{name}" if name.startswith("vp_") else f"{prefix}{name}"
        out[key] = take(sessions.get(name, NONE), row)
    names = ["poor_high", "poor_low"] + (["range_ext_up", "range_ext_down"] if extras else [])
    for name in names:
        vals = take(sessions.get(name, NONE), row)
        out[f"{prefix}{name}"] = oi_mod.flags(vals > 0, ok & (vals >= 0))
    for name in ("single_prints", "selling_tail", "buying_tail") if extras else ():
        out[f"{prefix}{name}"] = take(sessions.get(name, NONE), row)
    return out


def _developing(s: _Series, as_ofs: np.ndarray, opts: SignalOptions) -> dict:
    """tpo_dev_* columns: the profile of the session containing each as_of, up to as_of."""
    cols = {k: [] for k in DEV_COLUMNS}
    for as_of in as_ofs.tolist():
        day = as_of // DAY_MS
        table = EMPTY_SESSIONS
        if s.tpo is not None:
            lo = np.searchsorted(s.tpo.open_ms, day * DAY_MS)
            hi = np.searchsorted(s.tpo.open_ms + s.tpo.step_ms, as_of, side="right")
            part = Candles(s.tpo.step_ms, *(getattr(s.tpo, f)[lo:hi] for f in _FIELDS))
            table = tpo.session_profiles(part, opts.tpo)
        one = _tpo_columns(table, np.array([day]), "tpo_dev_", "tpo_dev_", False)
        for k in DEV_COLUMNS:
            cols[k].append(one[k][0])
    return {k: np.array(v, dtype=object if "poor" in k else None) for k, v in cols.items()}


_FIELDS = ("open_ms", "open", "high", "low", "close", "volume", "notional")


def _regime_columns(s: _Series, j: np.ndarray, opts: SignalOptions) -> dict:
    ok = j >= 0
    jj = np.where(ok, j, 0)
    window = regime.rank_window(s.c.step_ms, opts.regime)
    rank = np.full(len(j), np.nan)
    if ok.any():
        rank[ok] = regime.percentile_rank(s.natr, window, at=j[ok])
    trend = np.where(ok, s.trend[jj] if len(s.trend) else 0, 0)
    out = {"regime": regime.labels(trend, rank, j + 1, opts.regime)}
    for name, arr in (("adx", s.ind.adx), ("plus_di", s.ind.plus_di)):
        out[name] = take(arr, j)
    out["minus_di"], out["natr"], out["natr_rank"] = take(s.ind.minus_di, j), take(s.natr, j), rank
    out["atr"] = take(s.ind.atr, j)
    return out


def _trap_columns(s: _Series, j: np.ndarray) -> dict:
    ev = s.events
    e = traps.latest_valid(ev, j)
    has = e >= 0
    ee = np.where(has, e, 0)

    def pick(values: np.ndarray) -> np.ndarray:
        out = np.empty(len(e), dtype=object)
        out[:] = None
        if len(values):
            out[has] = values[ee[has]]
        return out

    close_ms = s.c.close_ms
    times = np.where(has, close_ms[ev.confirm[ee]] if len(ev) else -1, -1)
    return {
        "last_trap_type": pick(ev.type),
        "last_trap_time": ms_to_datetime(times),
        "last_trap_level": take(ev.level, e),
        "last_trap_side": pick(ev.side),
        "last_trap_source": pick(ev.source),
    }


def _evaluate(s: _Series, as_ofs: np.ndarray, opts: SignalOptions) -> dict[str, np.ndarray]:
    j = s.c.last_closed(as_ofs)
    cols = _tpo_columns(s.sessions, as_ofs // DAY_MS - 1, "tpo_", "", opts.extras)
    cols |= _regime_columns(s, j, opts) | _trap_columns(s, j)
    cols |= oi_mod.oi_signals(s.c, as_ofs, s.oi, s.funding, opts.oi)
    names = STORED_COLUMNS + (EXTRA_COLUMNS if opts.extras else ())
    out = {k: cols[k] for k in names}
    if opts.developing:
        out |= _developing(s, as_ofs, opts)
    return out


def _ms(value: object, name: str) -> int | None:
    return None if value is None else to_ms(value, name=name)


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A DataFrame with the same dtypes whatever the values (labels and flags stay object)."""
    return pd.DataFrame(
        {
            name: pd.Series(values, dtype=object, copy=False) if values.dtype == object else values
            for name, values in columns.items()
        }
    )


def _history(s: _Series, start: int | None, opts: SignalOptions) -> pd.DataFrame:
    as_ofs = s.c.close_ms
    if start is not None:
        as_ofs = as_ofs[as_ofs > start]
    return _frame({"as_of": ms_to_datetime(as_ofs)} | _evaluate(s, as_ofs, opts))


def _events(s: _Series, since: int | None, opts: SignalOptions) -> pd.DataFrame:
    ev, c = s.events, s.c
    keep = np.ones(len(ev), dtype=bool)
    if since is not None:
        after = np.searchsorted(c.close_ms, since, side="right")
        keep = (ev.confirm >= after) | (ev.invalidated >= after)
    idx = np.flatnonzero(keep)
    b, t, inv = ev.breakout[idx], ev.confirm[idx], ev.invalidated[idx]
    oi_change = np.full(len(idx), np.nan)
    if s.oi is not None:
        age = oi_mod.max_age(opts.oi, c.step_ms)
        before = take(s.oi.oi, oi_mod.oi_at(s.oi, c.open_ms[b], age))
        oi_change = take(s.oi.oi, oi_mod.oi_at(s.oi, c.close_ms[t], age)) / before - 1.0
    rate = np.full(len(idx), np.nan)
    if s.funding is not None:
        rate = oi_mod.funding_at(s.funding, c.close_ms[t])[0]
    sign = pd.array([pd.NA if np.isnan(r) else int(np.sign(r)) for r in rate], dtype="Int64")
    columns = {
        "type": ev.type[idx],
        "side": ev.side[idx],
        "level": ev.level[idx],
        "level_source": ev.source[idx],
        "breakout_time": ms_to_datetime(c.close_ms[b]),
        "confirm_time": ms_to_datetime(c.close_ms[t]),
        "breakout_volume_ratio": traps.volume_ratio(c.volume, b, opts.traps.volume_bars),
        "oi_change": oi_change,
        "funding_sign": sign,
        "extreme": ev.extreme[idx],
        "invalidated_time": ms_to_datetime(np.where(inv >= 0, c.close_ms[inv], -1)),
    }
    return _frame(columns)


def _python(value: object) -> object:
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class SeriesInputs(TypedDict, total=False):
    """The keyword inputs every entry point takes besides the candles (all optional)."""

    tpo_candles: pd.DataFrame | None
    tpo_timeframe: str | None
    open_interest: pd.DataFrame | None
    funding: pd.DataFrame | None
    options: SignalOptions


def signals_at(
    candles: pd.DataFrame, *, as_of: object, timeframe: str, **inputs: Unpack[SeriesInputs]
) -> dict[str, object]:
    """The stored signal columns at `as_of`, from data at or before `as_of` only."""
    at = to_ms(as_of)
    s, opts = _prepare(candles, timeframe, at, **inputs)
    cols = _evaluate(s, np.array([at], dtype=np.int64), opts)
    return {k: _python(v[0]) for k, v in cols.items()}


def signals_history(
    candles: pd.DataFrame,
    *,
    timeframe: str,
    start: object = None,
    end: object = None,
    **inputs: Unpack[SeriesInputs],
) -> pd.DataFrame:
    """One row of signals per candle closing in (start, end]: `as_of` then the signal columns."""
    s, opts = _prepare(candles, timeframe, _ms(end, "end"), **inputs)
    return _history(s, _ms(start, "start"), opts)


def trap_events(
    candles: pd.DataFrame,
    *,
    timeframe: str,
    as_of: object = None,
    since: object = None,
    **inputs: Unpack[SeriesInputs],
) -> pd.DataFrame:
    """Trap and sweep events confirmed at or before `as_of` (TRAP_EVENT_COLUMNS), oldest first."""
    s, opts = _prepare(candles, timeframe, _ms(as_of, "as_of"), **inputs)
    return _events(s, _ms(since, "since"), opts)


def signals_update(
    candles: pd.DataFrame,
    *,
    timeframe: str,
    since: object = None,
    end: object = None,
    **inputs: Unpack[SeriesInputs],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(signals_history rows after `since`, trap_events changed after `since`) in one pass."""
    s, opts = _prepare(candles, timeframe, _ms(end, "end"), **inputs)
    start = _ms(since, "since")
    return _history(s, start, opts), _events(s, start, opts)


def signals_recompute(
    candles: pd.DataFrame, *, timeframe: str, since: object = None, **inputs: Unpack[SeriesInputs]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(signals_history rows after `since`, every trap event of the history) in one pass: what
    a recompute from `since` on compares with and replaces."""
    s, opts = _prepare(candles, timeframe, None, **inputs)
    return _history(s, _ms(since, "since"), opts), _events(s, None, opts)
