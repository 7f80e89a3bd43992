"""The `[series]` section: the series the pipeline collects.

Every scheduled deployment, the CLI and the flows take their exchanges, markets, symbols and
timeframes from here unless a parameter or option names others:

    [series]
    exchanges = ["binance", "bybit"]
    markets = ["spot", "linear"]
    symbols = ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "ETH/USDT:USDT"]
    timeframes = ["5m", "1h"]
    first_run_days = 30          # a series with nothing stored starts this far back
    derivatives_period = "5m"    # open interest history period
    orderbook_levels = 100       # levels per side of each order book snapshot

A symbol implies its market (BTC/USDT is spot, BTC/USDT:USDT the linear perpetual); `markets`
narrows which of the symbols are collected.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vectorflow.settings.checks import known
from vectorflow.timeframes import timeframe_ms

#: The exchanges and markets the pipeline knows (`vectorflow.exchanges.specs` holds their facts;
#: a test keeps the two lists equal).
EXCHANGES: tuple[str, ...] = ("binance", "bybit")
MARKETS: tuple[str, ...] = ("spot", "linear")

DEFAULT_EXCHANGES = list(EXCHANGES)
DEFAULT_MARKETS = list(MARKETS)
DEFAULT_SYMBOLS = ["BTC/USDT", "BTC/USDT:USDT"]
DEFAULT_TIMEFRAMES = ["5m", "1h"]
DAY_MS = 86_400_000


class SeriesSettings(BaseModel):
    """What is collected when no parameter says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    exchanges: Annotated[list[str], known(EXCHANGES, "exchange")] = Field(
        default_factory=lambda: list(DEFAULT_EXCHANGES),
        min_length=1,
        description="Exchanges collected from (binance, bybit).",
    )
    markets: Annotated[list[str], known(MARKETS, "market")] = Field(
        default_factory=lambda: list(DEFAULT_MARKETS),
        min_length=1,
        description="Markets collected (spot, linear): narrows which of `symbols` are fetched.",
    )
    symbols: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SYMBOLS),
        min_length=1,
        description="Unified symbols; each implies its market (BTC/USDT spot, BTC/USDT:USDT "
        "the USDT-margined perpetual).",
    )
    timeframes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TIMEFRAMES),
        min_length=1,
        description="Candle timeframes collected.",
    )
    first_run_days: float = Field(
        default=30.0,
        gt=0,
        description="How far back a series with nothing stored starts (days).",
    )
    derivatives_period: str = Field(
        default="5m", description="Period of the open interest history (5m, 15m, 30m, 1h, 4h, 1d)."
    )
    orderbook_levels: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Levels per side kept of each REST order book snapshot.",
    )

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, value: list[str]) -> list[str]:
        for timeframe in value:
            timeframe_ms(timeframe)
        return value

    def pick(
        self,
        exchanges: list[str] | None = None,
        markets: list[str] | None = None,
        symbols: list[str] | None = None,
        timeframes: list[str] | None = None,
    ) -> dict[str, list[str]]:
        """The series lists of a run: each given (non-empty) list replaces the configured one."""
        return {
            "exchanges": list(exchanges or self.exchanges),
            "markets": list(markets or self.markets),
            "symbols": list(symbols or self.symbols),
            "timeframes": list(timeframes or self.timeframes),
        }

    def first_since_ms(self, until_ms: int) -> int:
        """Where a series with nothing stored starts when no `since` is given."""
        return until_ms - int(self.first_run_days * DAY_MS)
