"""The settings of one run: every section, the data dir and the paths derived from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vectorflow.settings.backtest import BacktestConfig
from vectorflow.settings.checks import known
from vectorflow.settings.exchanges import ExchangeEndpoints
from vectorflow.settings.lake import LakeSettings
from vectorflow.settings.notifications import NotificationSettings, ReportSettings
from vectorflow.settings.playbooks import PlaybookSettings
from vectorflow.settings.resilience import ResilienceSettings
from vectorflow.settings.series import EXCHANGES, SeriesSettings
from vectorflow.timeframes import timeframe_ms

#: Signals (TPO, regime, traps) are computed after ingest for these timeframes by default: on
#: 1m-3m bars they cost much and say little; finer candles still feed the TPO of these.
SIGNAL_TIMEFRAMES = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w")


class SettingsKeys(BaseModel):
    """Every key of the settings file; each can also be set from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    workers: int = Field(
        default=4, ge=1, le=64, description="Units (one series each) fetched at once."
    )
    markets_cache_hours: float = Field(
        default=24.0,
        ge=0,
        description="How long an exchange's market list is reused from the cache before it is "
        "loaded again.",
    )
    request_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Connect and read timeout of every exchange request."
    )
    flush_rows: int = Field(
        default=200_000,
        ge=1000,
        description="Candles buffered per series before they are written to the lake.",
    )
    signal_timeframes: tuple[str, ...] = Field(
        default=SIGNAL_TIMEFRAMES,
        description="Timeframes whose series get signals after each ingest (finer candles "
        "still feed their TPO profiles).",
    )
    tpo_row_sizes: dict[str, float] = Field(
        default_factory=dict,
        description='TPO row size per unified symbol, e.g. "BTC/USDT" = 10; a symbol not '
        "listed gets one derived from its price.",
    )
    series: SeriesSettings = Field(
        default_factory=SeriesSettings,
        description="What is collected when no parameter or option names other series.",
    )
    exchanges: Annotated[dict[str, ExchangeEndpoints], known(EXCHANGES, "exchange")] = Field(
        default_factory=dict,
        description="Where each exchange is reached, by name (binance, bybit).",
    )
    resilience: ResilienceSettings = Field(
        default_factory=ResilienceSettings,
        description="Retries, circuit breakers, waits and rate budgets.",
    )
    backtest: BacktestConfig = Field(
        default_factory=BacktestConfig,
        description="Costs, grids, splits and series of the backtests.",
    )
    playbooks: PlaybookSettings = Field(
        default_factory=PlaybookSettings,
        description="How playbooks are written, checked and graded.",
    )
    lake: LakeSettings = Field(
        default_factory=LakeSettings,
        description="Where the lake is, how small files are merged, how long rows are kept.",
    )
    notifications: NotificationSettings = Field(
        default_factory=NotificationSettings,
        description="Messages about failed runs and new playbooks.",
    )
    reports: ReportSettings = Field(
        default_factory=ReportSettings, description="Where the HTML reports are served."
    )

    @field_validator("tpo_row_sizes")
    @classmethod
    def _row_sizes(cls, value: dict[str, float]) -> dict[str, float]:
        for symbol, size in value.items():
            if size <= 0:
                raise ValueError(f"TPO row size of {symbol!r} must be positive, got {size}")
        return value

    @field_validator("signal_timeframes")
    @classmethod
    def _timeframes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for timeframe in value:
            timeframe_ms(timeframe)  # InvalidInput (a ValueError) names an unknown one
        return value


class Settings(SettingsKeys):
    """Resolved settings of one run (`vectorflow.config.load_settings` builds them)."""

    data_dir: Path
    config_path: Path
    #: The lake: where (`storage.root`) and how its files are kept, a
    #: `vectorflow.lake.storage.Storage` opened once from `lake.url` when the settings load.
    #: Typed loosely because the lake sits above this core package and may not be imported here.
    storage: Any = Field(repr=False, exclude=True)

    @property
    def catalog_path(self) -> Path:
        """The DuckDB catalog of views."""
        return self.data_dir / "vectorflow.duckdb"

    @property
    def state_path(self) -> Path:
        """SQLite file of the state every process on the host shares (rate limits, breakers)."""
        return self.data_dir / "state.db"

    @property
    def cache_dir(self) -> Path:
        """Small caches (markets) that may be deleted at any time."""
        return self.data_dir / "cache"

    @property
    def reports_dir(self) -> Path:
        """HTML reports (backtests), served by `vectorflow up` or at `[reports] url`."""
        return self.data_dir / "reports"

    @property
    def reports_url(self) -> str | None:
        """Where the reports are served for a shared deployment (None: `vectorflow up` serves
        them on 127.0.0.1)."""
        return self.reports.url

    @property
    def webhook_url(self) -> str | None:
        """Where `vectorflow up` posts failed and crashed runs (None: nowhere)."""
        return self.notifications.webhook_url

    def endpoint(self, exchange: str) -> ExchangeEndpoints:
        """The URL overrides of `exchange` (empty when it is reached at its public URLs)."""
        return self.exchanges.get(exchange, ExchangeEndpoints())

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with command-line or flow-parameter values applied (None leaves a value as is)."""
        return self.model_copy(update={k: v for k, v in changes.items() if v is not None})
