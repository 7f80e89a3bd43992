"""The `[backtest]` section: portfolio costs, grids, splits, the nightly series.

    [backtest]
    slippage = 0.0005              # fraction of the price, each fill
    init_cash = 10000              # quote currency
    memory_budget_mb = 1024        # peak memory of one grid chunk (the grid runs in chunks)
    leaders = 3                    # parameter sets per series and strategy whose trades are kept
    metric = "sharpe_ratio"        # in-sample metric that picks the parameters
    grid = "default"               # or "small"
    strategies = []                # nightly: [] = every strategy
    timeframes = ["1h"]            # nightly: every stored series at these timeframes...
    series = []                    # ...or exactly these: [{exchange, market, symbol, timeframe}]
    walk_forward = true            # nightly: rolling windows; false: one in/out split
    in_sample_fraction = 0.7       # the split when walk_forward is off (1.0: no out-of-sample)
    sl_stop = []                   # stop-loss fractions added to every grid, e.g. [0.02, 0.05]
    tp_stop = []                   # take-profit fractions added to every grid
    dask_address = ""              # nightly: "" = the flow's process, one unit at a time;
                                   # "local" = a temporary Dask LocalCluster on this machine;
                                   # "tcp://host:8786" = that Dask scheduler's workers
                                   # (or VECTORFLOW_DASK_ADDRESS)

    [backtest.fees]                # taker fee fraction per market (0.1 % spot, 0.05 % perpetual)
    spot = 0.001
    linear = 0.0005
    [backtest.exchange_fees.bybit] # per-exchange overrides
    spot = 0.001

    [backtest.windows]             # walk-forward windows (days); the latest max_windows are run
    in_sample_days = 20
    out_of_sample_days = 7
    max_windows = 12
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vectorflow.settings.checks import check_name

DEFAULT_FEES: dict[str, float] = {"spot": 0.001, "linear": 0.0005}

#: Metrics a run can be ranked by; for each of them higher is better (drawdowns are negative).
RANKABLE_METRICS: tuple[str, ...] = (
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "total_return",
    "max_drawdown",
    "win_rate",
    "profit_factor",
)


_DASK_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ucx|inproc)://)?[A-Za-z0-9_.\-\[\]:/]+:\d{1,5}$")


def check_dask_address(value: str) -> str:
    """Empty (local threads), "local" (a temporary LocalCluster) or a Dask scheduler address."""
    value = value.strip()
    if value in ("", "local") or _DASK_ADDRESS.match(value):
        return value
    raise ValueError(
        f"{value!r} is not a Dask scheduler address (e.g. tcp://10.0.0.5:8786), 'local' or empty"
    )


class SeriesRef(BaseModel):
    """One stored candle series to backtest."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    exchange: str = Field(description="Exchange of the stored series (binance, bybit).")
    market: str = Field(description="Its market (spot, linear).")
    symbol: str = Field(description="Its unified symbol, e.g. BTC/USDT:USDT.")
    timeframe: str = Field(description="Its candle timeframe, e.g. 1h.")


class WindowConfig(BaseModel):
    """Walk-forward windows: in-sample days, then out-of-sample days; steps by the latter."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    in_sample_days: float = Field(
        default=20.0, gt=0, description="Days of bars each window's grid is chosen on."
    )
    out_of_sample_days: float = Field(
        default=7.0,
        gt=0,
        description="Days after them its leaders are tested on; windows step by this much.",
    )
    max_windows: int = Field(
        default=12, ge=1, le=1000, description="Only the latest this many windows are run."
    )


class BacktestConfig(BaseModel):
    """Portfolio costs, grid and split choices of the backtests (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fees: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_FEES),
        description="Taker fee per market, as a fraction of each fill's value.",
    )
    exchange_fees: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per-exchange fee overrides, e.g. [backtest.exchange_fees.bybit] spot = 0.001.",
    )
    slippage: float = Field(
        default=0.0005, ge=0, lt=0.1, description="Fraction of the price lost on each fill."
    )
    init_cash: float = Field(
        default=10_000.0, gt=0, description="Starting cash of each run, in the quote currency."
    )
    memory_budget_mb: float = Field(
        default=1024.0,
        ge=16,
        description="Peak memory of one grid chunk; a grid runs in as many chunks as it needs.",
    )
    leaders: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Best in-sample parameter sets per strategy that run out of sample and "
        "keep their trades.",
    )
    metric: str = Field(
        default="sharpe_ratio",
        description="In-sample metric that ranks the parameter sets (higher is better).",
    )
    grid: Literal["default", "small"] = Field(
        default="default", description="Which parameter grid of each strategy runs."
    )
    strategies: list[str] = Field(
        default_factory=list, description="Strategies the nightly runs; empty: every one."
    )
    timeframes: list[str] = Field(
        default_factory=lambda: ["1h"],
        description="The nightly backtests every stored series at these timeframes (unless "
        "`series` is set).",
    )
    series: list[SeriesRef] = Field(
        default_factory=list,
        description="Exactly these series instead, as [[backtest.series]] tables.",
    )
    walk_forward: bool = Field(
        default=True,
        description="Nightly: rolling walk-forward windows; false: one in/out-of-sample split.",
    )
    in_sample_fraction: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="The share of bars in sample when walk_forward is off (1.0: no "
        "out-of-sample part).",
    )
    windows: WindowConfig = Field(default_factory=WindowConfig, description="Walk-forward windows.")
    sl_stop: list[float] = Field(
        default_factory=list,
        description="Stop-loss fractions added to every grid as one more parameter, e.g. "
        "[0.02, 0.05].",
    )
    tp_stop: list[float] = Field(
        default_factory=list, description="Take-profit fractions added to every grid."
    )
    dask_address: str = Field(
        default="",
        description="Where the nightly runs its backtest tasks: empty, in the flow's process; "
        '"local", on a temporary Dask LocalCluster; "tcp://host:8786", on that Dask '
        "scheduler's workers.",
    )

    @field_validator("dask_address")
    @classmethod
    def _dask_address(cls, value: str) -> str:
        return check_dask_address(value)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return check_name(value, RANKABLE_METRICS, "metric")

    @field_validator("fees")
    @classmethod
    def _fees(cls, value: dict[str, float]) -> dict[str, float]:
        for market, fee in value.items():
            if not 0 <= fee < 0.1:
                raise ValueError(f"fee {fee!r} for {market!r} is not a fraction in [0, 0.1)")
        return {**DEFAULT_FEES, **value}

    @field_validator("exchange_fees")
    @classmethod
    def _exchange_fees(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for exchange, markets in value.items():
            for market, fee in markets.items():
                if not 0 <= fee < 0.1:
                    raise ValueError(f"fee {fee!r} for {exchange} {market} is not in [0, 0.1)")
        return value

    @field_validator("sl_stop", "tp_stop")
    @classmethod
    def _stops(cls, value: list[float]) -> list[float]:
        for stop in value:
            if not 0 < stop < 1:
                raise ValueError(f"stop {stop!r} is not a fraction in (0, 1)")
        return value

    def fee(self, exchange: str, market: str) -> float:
        """Taker fee fraction of one exchange and market (exchange override, else per market)."""
        override = self.exchange_fees.get(exchange, {})
        if market in override:
            return override[market]
        return self.fees.get(market, DEFAULT_FEES.get(market, 0.001))
