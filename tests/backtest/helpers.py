"""Hand-made bars and signal frames for the backtest tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vectorflow.backtest.portfolio import PortfolioSettings

GOLDEN_CLOSES = [100, 102, 101, 105, 103, 99, 100, 104]


def bars_from_closes(closes, *, freq: str = "1h", wick: float = 0.0) -> pd.DataFrame:
    """Bars indexed by close time whose open is the previous close and wicks are +-wick."""
    close = np.asarray(closes, dtype=np.float64)
    index = pd.date_range("2024-01-01 01:00", periods=len(close), freq=freq, name="close_time")
    open_ = np.concatenate(([close[0]], close[:-1]))
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    return pd.DataFrame(
        {
            "open": open_,
            "high": top * (1 + wick),
            "low": bottom * (1 - wick),
            "close": close,
            "volume": np.ones(len(close)),
        },
        index=index,
    )


def random_bars(n: int, seed: int = 1, vol: float = 0.01) -> pd.DataFrame:
    """A seeded random walk of n hourly bars with 0.4 % wicks."""
    rng = np.random.default_rng(seed)
    return bars_from_closes(100 * np.exp(np.cumsum(rng.normal(0, vol, n))), wick=0.004)


def settings(*, fees=0.0, slippage=0.0, cash=100.0, both_sides=False) -> PortfolioSettings:
    """Portfolio settings on 1h bars."""
    return PortfolioSettings(fees, slippage, cash, "1h", both_sides)


def signal_frame(bars: pd.DataFrame, seed: int = 2) -> pd.DataFrame:
    """A causal hand-made signal frame: daily value areas from the previous day's closes, a
    regime from a 48-bar trend, and trap events confirmed every few dozen bars."""
    close = bars["close"]
    day = close.index.floor("D")
    prev = close.groupby(day).agg(["min", "max", "mean"]).shift(1)
    levels = prev.reindex(day).set_axis(close.index)
    trend = close / close.shift(48) - 1
    regime = np.where(trend > 0.01, "trend_up", np.where(trend < -0.01, "trend_down", "range"))
    vol = np.where(close.pct_change().abs().rolling(24).mean() > 0.009, "|high_vol", "|normal_vol")
    rng = np.random.default_rng(seed)
    events = np.sort(rng.choice(np.arange(30, len(bars)), size=len(bars) // 40, replace=False))
    kinds = rng.choice(["bull_trap", "bear_trap", "sweep_high", "sweep_low"], size=len(events))
    latest = np.searchsorted(events, np.arange(len(bars)), side="right") - 1
    has = latest >= 0
    pick = np.where(has, latest, 0)
    return pd.DataFrame(
        {
            "tpo_poc": levels["mean"].to_numpy(),
            "tpo_vah": levels["max"].to_numpy() * 0.998,
            "tpo_val": levels["min"].to_numpy() * 1.002,
            "regime": np.char.add(regime.astype(str), vol.astype(str)),
            "last_trap_type": np.where(has, kinds[pick], None),
            "last_trap_time": np.where(has, close.index[events[pick]], pd.NaT),
            "last_trap_level": np.where(has, close.to_numpy()[events[pick]], np.nan),
        },
        index=close.index,
    )


def land_bundled(sim, data_dir, refs, timeframes=("1h", "30m")) -> None:
    """Ingest the simulator's bundled history of `refs` (SeriesRef) at `timeframes` into
    `data_dir` (30m feeds the TPO signals of 1h series)."""
    from tests.conftest import SIM_NOW, sim_settings
    from vectorflow.pipelines.candles import ingest_series
    from vectorflow.timeframes import parse_time
    from vectorflow.units import Unit

    settings = sim_settings(sim, data_dir)
    first, _ = sim.bundled_range("5m")
    for ref in refs:
        for timeframe in timeframes:
            unit = Unit(ref.exchange, ref.market, ref.symbol, timeframe)
            assert ingest_series(unit, first, parse_time(SIM_NOW), settings).rows_written > 500
