"""Portfolio settings in one place, and the one call that simulates signals with vectorbt.

Orders fill at the close of the signal's bar, all available cash per entry (vectorbt's default
size), with the series' taker fee and the configured slippage on every fill. Perpetuals
(`linear`) trade both sides when a strategy gives short signals; spot is long only. `freq` is
always the timeframe, and annualised ratios use a 365-day year (crypto trades every day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vectorflow.backtest.strategies import Signals
from vectorflow.settings.backtest import BacktestConfig
from vectorflow.timeframes import timeframe_ms

YEAR_FREQ = "365 days"
BOTH_SIDES_MARKETS = ("linear",)


@dataclass(frozen=True)
class PortfolioSettings:
    """Everything vectorbt's Portfolio.from_signals is given besides prices and signals."""

    fees: float
    slippage: float
    init_cash: float
    timeframe: str
    both_sides: bool
    year_freq: str = YEAR_FREQ

    @property
    def freq(self) -> pd.Timedelta:
        """The bar length, vectorbt's `freq`."""
        return pd.Timedelta(milliseconds=timeframe_ms(self.timeframe))


def portfolio_settings(
    config: BacktestConfig, exchange: str, market: str, timeframe: str
) -> PortfolioSettings:
    """The portfolio settings of one series: its exchange and market's fee, the configured rest."""
    return PortfolioSettings(
        fees=config.fee(exchange, market),
        slippage=config.slippage,
        init_cash=config.init_cash,
        timeframe=timeframe,
        both_sides=market in BOTH_SIDES_MARKETS,
    )


def _frame(values: np.ndarray, index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(values, index=index, columns=pd.RangeIndex(values.shape[1]))


def _stops(stops: dict[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    """Stop arrays (one value per column, NaN = none) that stop anything; none at all if not."""
    return {k: v for k, v in stops.items() if v is not None and not np.isnan(v).all()}


def simulate(
    bars: pd.DataFrame,
    signals: Signals,
    settings: PortfolioSettings,
    *,
    sl_stop: np.ndarray | None = None,
    tp_stop: np.ndarray | None = None,
):
    """A vectorbt Portfolio with one column per parameter set of `signals`."""
    import vectorbt as vbt

    index = bars.index
    kwargs: dict = dict(
        entries=_frame(signals.entries, index),
        exits=_frame(signals.exits, index),
    )
    if settings.both_sides and signals.short_entries is not None:
        kwargs["short_entries"] = _frame(signals.short_entries, index)
        kwargs["short_exits"] = _frame(signals.short_exits, index)
    stops = _stops({"sl_stop": sl_stop, "tp_stop": tp_stop})
    if stops:  # vectorbt checks stops against each bar's open, high, low and close
        kwargs |= {k: bars[k] for k in ("open", "high", "low")}
        kwargs |= {k: np.where(np.isnan(v), np.inf, v) for k, v in stops.items()}
    return vbt.Portfolio.from_signals(
        bars["close"],
        fees=settings.fees,
        slippage=settings.slippage,
        init_cash=settings.init_cash,
        freq=settings.freq,
        **kwargs,
    )
