"""Open interest and funding: ΔOI, Δprice, quadrant, OI z-score, annualised funding, flags.

Spot markets pass no open interest or funding and get nulls. Definitions, windows, dead bands
and staleness limits: docs/signals.md#open-interest-and-funding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vectorflow.signals.inputs import (
    HOUR_MS,
    Candles,
    last_at_or_before,
    sorted_rows,
    take,
)

QUADRANTS = np.array(
    [None, "neutral", "long_build_up", "short_build_up", "short_covering", "long_unwinding"],
    dtype=object,
)
BAND_TOLERANCE = 1e-9


@dataclass(frozen=True)
class OiSettings:
    """Open-interest and funding parameters (defaults: docs/signals.md)."""

    oi_band: float = 0.005
    price_band: float = 0.002
    zscore_days: float = 30.0
    zscore_min_obs: int = 24
    funding_days: float = 30.0
    top_decile: float = 0.9
    max_age_ms: int | None = None


@dataclass(frozen=True)
class OpenInterest:
    """OI observations sorted by time, with the z-score at each one."""

    times: np.ndarray
    oi: np.ndarray
    value: np.ndarray  # quote notional, NaN where unknown
    zscore: np.ndarray


@dataclass(frozen=True)
class Funding:
    """Funding records sorted by time: annualised rate, staleness limit, top-decile flag."""

    times: np.ndarray
    annual: np.ndarray
    max_age: np.ndarray
    top: np.ndarray


def annualize(rate: np.ndarray | float, interval_hours: np.ndarray | float) -> np.ndarray:
    """Funding per interval as an annual rate: rate × (24 / interval_hours) × 365."""
    return np.asarray(rate, dtype=np.float64) * (24.0 / np.asarray(interval_hours)) * 365.0


def _rolling(values: np.ndarray, times: np.ndarray, days: float, min_obs: int):
    series = pd.Series(values, index=pd.to_datetime(times, unit="ms"))
    return series.rolling(pd.Timedelta(days=days), min_periods=min_obs)


def prepare_oi(frame: pd.DataFrame | None, end: int | None, settings: OiSettings):
    """OpenInterest from an `open_interest` frame (rows at or before `end`), None without rows."""
    rows = sorted_rows(frame, "time", end)
    if rows is None:
        return None
    times = rows["_ms"].to_numpy(np.int64)
    oi = pd.to_numeric(rows["open_interest"]).to_numpy(np.float64, na_value=np.nan)
    value = rows.get("open_interest_value", pd.Series(np.nan, index=rows.index))
    value = pd.to_numeric(value).to_numpy(np.float64, na_value=np.nan)
    roll = _rolling(oi, times, settings.zscore_days, max(settings.zscore_min_obs, 2))
    mean, std = roll.mean().to_numpy(), roll.std().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, (oi - mean) / std, np.nan)
    return OpenInterest(times, oi, value, z)


def prepare_funding(frame: pd.DataFrame | None, end: int | None, settings: OiSettings):
    """Funding from a `funding_rates` frame (rows at or before `end`), None without rows."""
    rows = sorted_rows(frame, "funding_time", end)
    if rows is None:
        return None
    times = rows["_ms"].to_numpy(np.int64)
    hours = rows.get("interval_hours", pd.Series(np.nan, index=rows.index))
    hours = pd.to_numeric(hours).to_numpy(np.float64, na_value=np.nan)
    hours = np.where(np.isnan(hours) | (hours <= 0), 8.0, hours)
    rate = pd.to_numeric(rows["funding_rate"]).to_numpy(np.float64, na_value=np.nan)
    annual = annualize(rate, hours)
    roll = _rolling(annual, times, settings.funding_days, 1)
    hi, lo = roll.max().to_numpy(), roll.min().to_numpy()
    top = (hi > lo) & (annual >= lo + settings.top_decile * (hi - lo))
    return Funding(times, annual, (2 * hours * HOUR_MS).astype(np.int64), top)


def _moves(now: np.ndarray, then: np.ndarray, band: float) -> tuple[np.ndarray, np.ndarray]:
    """(fractional change, direction +1/−1/0 outside/inside the inclusive dead band)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        change = now / then - 1.0
        limit = band * np.abs(then) * (1.0 + BAND_TOLERANCE)
        diff = now - then
    direction = np.where(diff > limit, 1, np.where(diff < -limit, -1, 0))
    return change, direction


def quadrant(price_dir: np.ndarray, oi_dir: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Quadrant labels from price and OI directions (None where either change is unknown)."""
    code = np.select(
        [
            (price_dir > 0) & (oi_dir > 0),
            (price_dir < 0) & (oi_dir > 0),
            (price_dir > 0) & (oi_dir < 0),
            (price_dir < 0) & (oi_dir < 0),
        ],
        [2, 3, 4, 5],
        default=1,
    )
    return QUADRANTS[np.where(known, code, 0)]


def flags(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Nullable booleans as an object array: bool where known, None elsewhere."""
    out = np.asarray(values, dtype=bool).astype(object)
    out[~np.asarray(known, dtype=bool)] = None
    return out


def max_age(settings: OiSettings, step_ms: int) -> int:
    """How old an OI observation may be and still count: max(2 bars, 2 h) unless set."""
    return settings.max_age_ms or max(2 * step_ms, 2 * HOUR_MS)


def oi_at(oi: OpenInterest, times: np.ndarray, age: int) -> np.ndarray:
    """Index of the OI observation valid at each time (-1 when none is fresh enough)."""
    return last_at_or_before(oi.times, times, age)


def funding_at(funding: Funding, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(annualised funding, top-decile flag) valid at each time; NaN / False when stale."""
    idx = np.searchsorted(funding.times, times, side="right") - 1
    safe = np.maximum(idx, 0)
    fresh = (idx >= 0) & (times - funding.times[safe] <= funding.max_age[safe])
    idx = np.where(fresh, idx, -1)
    return take(funding.annual, idx), fresh & funding.top[safe]


def _window(c: Candles, as_ofs: np.ndarray, k_ms: int, oi, s: OiSettings) -> dict:
    close_ms, n = c.close_ms, len(as_ofs)
    price_now = take(c.close, last_at_or_before(close_ms, as_ofs, c.step_ms - 1))
    price_then = take(c.close, last_at_or_before(close_ms, as_ofs - k_ms, c.step_ms - 1))
    price_change, price_dir = _moves(price_now, price_then, s.price_band)
    out = {"price_change": price_change, "price_dir": price_dir, "oi_dir": np.zeros(n, int)}
    out |= {"oi_change": np.full(n, np.nan), "oi_to_volume": np.full(n, np.nan)}
    if oi is None:
        return out
    age = max_age(s, c.step_ms)
    i_now = oi_at(oi, as_ofs, age)
    oi_now, value = take(oi.oi, i_now), take(oi.value, i_now)
    oi_then = take(oi.oi, oi_at(oi, as_ofs - k_ms, age))
    out["oi_change"], out["oi_dir"] = _moves(oi_now, oi_then, s.oi_band)
    csum = np.r_[0.0, np.cumsum(np.nan_to_num(c.notional))]
    traded = csum[np.searchsorted(close_ms, as_ofs, "right")]
    traded = traded - csum[np.searchsorted(close_ms, as_ofs - k_ms, "right")]
    value = np.where(np.isnan(value), oi_now * price_now, value)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["oi_to_volume"] = np.where(traded > 0, value / traded, np.nan)
    out["zscore"] = take(oi.zscore, i_now)
    return out


def oi_signals(
    candles: Candles,
    as_ofs: np.ndarray,
    oi: OpenInterest | None,
    funding: Funding | None,
    settings: OiSettings = OiSettings(),
) -> dict[str, np.ndarray]:
    """Open-interest and funding signals at each time in `as_ofs` (epoch ms)."""
    bar = _window(candles, as_ofs, candles.step_ms, oi, settings)
    day = _window(candles, as_ofs, 24 * HOUR_MS, oi, settings)
    n = len(as_ofs)
    has_bar = ~np.isnan(bar["oi_change"]) & ~np.isnan(bar["price_change"])
    has_day = ~np.isnan(day["oi_change"]) & ~np.isnan(day["price_change"])
    zscore = bar.get("zscore", np.full(n, np.nan))
    annual, top = np.full(n, np.nan), np.zeros(n, dtype=bool)
    if funding is not None:
        annual, top = funding_at(funding, as_ofs)
    known = has_bar & ~np.isnan(annual)
    price_up, oi_up = bar["price_dir"] > 0, bar["oi_dir"] > 0
    crowded = top & (np.nan_to_num(zscore) > 1) & price_up
    return {
        "price_change": bar["price_change"],
        "price_change_24h": day["price_change"],
        "oi_change": bar["oi_change"],
        "oi_change_24h": day["oi_change"],
        "oi_quadrant": quadrant(bar["price_dir"], bar["oi_dir"], has_bar),
        "oi_quadrant_24h": quadrant(day["price_dir"], day["oi_dir"], has_day),
        "oi_zscore": zscore,
        "oi_to_volume": bar["oi_to_volume"],
        "oi_to_volume_24h": day["oi_to_volume"],
        "funding_annualized": annual,
        "funding_top_decile": flags(top, ~np.isnan(annual)),
        "crowded_longs": flags(crowded, known & ~np.isnan(zscore)),
        "squeeze_fuel": flags((annual < 0) & oi_up & price_up, known),
    }
