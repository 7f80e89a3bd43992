"""Settings: defaults, then the TOML file, then the environment, then command-line options.

The data dir comes from `VECTORFLOW_DATA_DIR` (default `./data` under the current folder) or the
command line; the settings file is `VECTORFLOW_CONFIG` (default `<data dir>/vectorflow.toml`).
Example file:

    workers = 4                     # concurrent ingest units
    markets_cache_hours = 24        # how long load_markets results are reused
    request_timeout_seconds = 10    # connect+read timeout of every exchange request
    flush_rows = 200000             # rows buffered per series before a Parquet file is written
    signal_timeframes = ["5m", "1h", "4h"]  # series that get signals after ingest (default 5m+)

    [series]                        # what is collected unless a parameter names others:
    symbols = ["BTC/USDT", "BTC/USDT:USDT"]   # exchanges, markets, timeframes, first_run_days...
                                    # (vectorflow.series_config)
    [tpo_row_sizes]                 # TPO row size per unified symbol (default: from price, see
    "BTC/USDT" = 10                 # vectorflow/signals/rows.py)

    [exchanges.binance]
    url = "http://127.0.0.1:8900"   # replaces scheme and host of every Binance endpoint
    ws_url = "ws://127.0.0.1:8901"  # the same for its WebSocket streams (capture-orderbook)
    [exchanges.binance.urls]        # or whole URLs per ccxt API group (testnets)
    fapiPublic = "https://testnet.binancefuture.com/fapi/v1"

    [resilience]                    # retries, breakers, rate budgets: vectorflow.resilience.config
    breaker_failures = 5

    [backtest]                      # fees, slippage, grids, windows: vectorflow.backtest.config
    slippage = 0.0005

    [playbooks]                     # model, budget, horizon: vectorflow.playbooks.config
    token_budget = 200000

    [lake.retention_days]           # retention, merging, grace: vectorflow.lake.config
    orderbook_levels = 30

    [notifications]                 # or VECTORFLOW_WEBHOOK_URL: `vectorflow up` posts failed runs
    webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"
    playbooks = true                # also post each new long/short playbook, once
    playbooks_min_confidence = 60   # ... whose confidence is at least this

    [reports]                       # or VECTORFLOW_REPORTS_URL: where <data dir>/reports is served
    url = "https://reports.example.com/vectorflow"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from vectorflow.backtest.config import BacktestConfig, check_dask_address
from vectorflow.errors import InvalidInput
from vectorflow.exchanges.urls import check_base_url, check_ws_url
from vectorflow.lake.config import LakeSettings
from vectorflow.lake.storage import Storage, open_storage
from vectorflow.playbooks.config import PlaybookSettings
from vectorflow.resilience.config import ResilienceFile, ResilienceSettings, resolve_resilience
from vectorflow.series_config import SeriesSettings
from vectorflow.timeframes import timeframe_ms

EXCHANGES: tuple[str, ...] = ("binance", "bybit")


class _ExchangeFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(
        default=None,
        description="Base URL replacing the scheme and host of every REST endpoint of this "
        "exchange, paths kept (a proxy, a testnet, the simulator). Environment: "
        "VECTORFLOW_BINANCE_URL, VECTORFLOW_BYBIT_URL.",
    )
    ws_url: str | None = Field(
        default=None,
        description="The same for its WebSocket streams (capture-orderbook). Environment: "
        "VECTORFLOW_BINANCE_WS_URL, VECTORFLOW_BYBIT_WS_URL.",
    )
    urls: dict[str, str] = Field(
        default_factory=dict,
        description="Whole URLs per ccxt API group, applied after `url` (testnets with a host "
        'per group), e.g. fapiPublic = "https://testnet.binancefuture.com/fapi/v1".',
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value, name="url")

    @field_validator("ws_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        return None if value is None else check_ws_url(value, name="ws_url")


#: Signals (TPO, regime, traps) are computed after ingest for these timeframes by default: on
#: 1m-3m bars they cost much and say little; finer candles still feed the TPO of these.
SIGNAL_TIMEFRAMES = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w")


def check_http_url(value: str, *, name: str) -> str:
    """`value` when it is an http(s) URL; InvalidInput naming it otherwise."""
    from urllib.parse import urlparse

    parsed = urlparse(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        # never echoed: a webhook URL holds its token
        raise InvalidInput(f"{name}: not an http(s) URL such as https://host/path")
    return value.strip()


def _http_url(name: str) -> AfterValidator:
    """A field validator: None, or an http(s) URL (`check_http_url`)."""
    return AfterValidator(lambda value: None if value is None else check_http_url(value, name=name))


class _NotificationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhook_url: Annotated[str | None, _http_url("webhook_url")] = Field(
        default=None,
        description="Where `vectorflow up` has Prefect post every failed or crashed flow run "
        "(a Slack incoming webhook or any http(s) endpoint). Environment: "
        "VECTORFLOW_WEBHOOK_URL.",
    )
    playbooks: bool = Field(
        default=False,
        description="Post each new `ok` or `repaired` long or short playbook to the webhook, "
        "once (series, bias, entry zone, stop, targets, valid until, source).",
    )
    playbooks_min_confidence: int = Field(
        default=60,
        ge=0,
        le=100,
        description="Only playbooks of at least this confidence (0-100) are posted.",
    )


class _ReportsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str | None, _http_url("reports url")] = Field(
        default=None,
        description="Where <data dir>/reports is served for a shared deployment: the backtest "
        "reports' artifacts link there. Without it, `vectorflow up` serves the folder on "
        "127.0.0.1 beside the Prefect UI. Environment: VECTORFLOW_REPORTS_URL.",
    )


class _SettingsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workers: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Units (one series each) fetched at once. Environment: VECTORFLOW_WORKERS.",
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
    signal_timeframes: list[str] = Field(
        default_factory=lambda: list(SIGNAL_TIMEFRAMES),
        description="Timeframes whose series get signals after each ingest (finer candles "
        "still feed their TPO profiles).",
    )
    tpo_row_sizes: dict[str, float] = Field(
        default_factory=dict,
        description='TPO row size per unified symbol, e.g. "BTC/USDT" = 10; a symbol not '
        "listed gets one derived from its price.",
    )

    @field_validator("tpo_row_sizes")
    @classmethod
    def _row_sizes(cls, value: dict[str, float]) -> dict[str, float]:
        for symbol, size in value.items():
            if size <= 0:
                raise ValueError(f"TPO row size of {symbol!r} must be positive, got {size}")
        return value

    series: SeriesSettings = Field(
        default_factory=SeriesSettings,
        description="What is collected when no parameter or option names other series.",
    )
    exchanges: dict[str, _ExchangeFile] = Field(
        default_factory=dict,
        description="Where each exchange is reached, by name (binance, bybit).",
    )
    resilience: ResilienceFile = Field(
        default_factory=ResilienceFile,
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
    notifications: _NotificationsFile = Field(
        default_factory=_NotificationsFile, description="Messages about failed runs."
    )
    reports: _ReportsFile = Field(
        default_factory=_ReportsFile, description="Where the HTML reports are served."
    )

    @field_validator("signal_timeframes")
    @classmethod
    def _timeframes(cls, value: list[str]) -> list[str]:
        for timeframe in value:
            timeframe_ms(timeframe)  # InvalidInput (a ValueError) names an unknown one
        return value

    @field_validator("exchanges")
    @classmethod
    def _known(cls, value: dict[str, _ExchangeFile]) -> dict[str, _ExchangeFile]:
        for name in value:
            if name not in EXCHANGES:
                raise ValueError(
                    f"unknown exchange {name!r}; expected one of {', '.join(EXCHANGES)}"
                )
        return value


@dataclass(frozen=True)
class ExchangeEndpoints:
    """Where one exchange is reached: a base URL replacing every host, and per-group URLs."""

    url: str | None = None
    urls: dict[str, str] = field(default_factory=dict)
    ws_url: str | None = None  # replaces scheme and host of every WebSocket stream URL


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one run."""

    data_dir: Path
    config_path: Path
    #: The lake: where (`storage.root`) and how its files are kept, chosen once from
    #: VECTORFLOW_LAKE_URL or `[lake] url` ("" = <data dir>/lake, a folder, s3://bucket/prefix)
    storage: Storage
    workers: int = 4
    markets_cache_hours: float = 24.0
    request_timeout_seconds: float = 10.0
    flush_rows: int = 200_000
    signal_timeframes: tuple[str, ...] = ()
    tpo_row_sizes: dict[str, float] = field(default_factory=dict)
    series: SeriesSettings = field(default_factory=SeriesSettings)
    endpoints: dict[str, ExchangeEndpoints] = field(default_factory=dict)
    resilience: ResilienceSettings = field(default_factory=ResilienceSettings)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    playbooks: PlaybookSettings = field(default_factory=PlaybookSettings)
    lake: LakeSettings = field(default_factory=LakeSettings)
    webhook_url: str | None = None  # where `vectorflow up` posts failed and crashed runs
    notify_playbooks: bool = False  # post new long/short playbooks to webhook_url
    notify_min_confidence: int = 60
    reports_url: str | None = None  # where <data dir>/reports is served (the artifacts link there)

    @property
    def catalog_path(self) -> Path:
        """The DuckDB catalog of views."""
        return self.data_dir / "vectorflow.duckdb"

    @property
    def state_path(self) -> Path:
        """SQLite file of the state every process on the host shares (rate limits, breakers)."""
        return self.data_dir / "state.db"

    @property
    def reports_dir(self) -> Path:
        """HTML reports (backtests), served by `vectorflow up` or at `reports_url`."""
        return self.data_dir / "reports"

    @property
    def cache_dir(self) -> Path:
        """Small caches (markets) that may be deleted at any time."""
        return self.data_dir / "cache"

    def endpoint(self, exchange: str) -> ExchangeEndpoints:
        """The URL overrides of `exchange` (empty when it is reached at its public URLs)."""
        return self.endpoints.get(exchange, ExchangeEndpoints())

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with command-line or flow-parameter values applied (None leaves a value as is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _read_file(path: Path) -> _SettingsFile:
    if not path.exists():
        return _SettingsFile()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"malformed settings file {path}: {exc}") from None
    try:
        return _SettingsFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise InvalidInput(f"malformed settings file {path}: {problems}") from None


def _env_int(env: dict[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name}={value!r} is not an integer") from None
    if number < 1:
        raise InvalidInput(f"{name}={value!r} must be at least 1")
    return number


def _backtest_env(cfg: BacktestConfig, env: dict[str, str]) -> BacktestConfig:
    """`VECTORFLOW_DASK_ADDRESS` (when set and not empty) replaces `[backtest] dask_address`."""
    if not env.get("VECTORFLOW_DASK_ADDRESS", "").strip():
        return cfg
    try:
        address = check_dask_address(env["VECTORFLOW_DASK_ADDRESS"], "VECTORFLOW_DASK_ADDRESS")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return cfg.model_copy(update={"dask_address": address})


def load_settings(
    data_dir: str | Path | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Resolve settings: `data_dir` (command line), then environment, then file, then defaults."""
    env = dict(os.environ if env is None else env)
    root = Path(data_dir or env.get("VECTORFLOW_DATA_DIR") or "data").expanduser().resolve()
    config = Path(env.get("VECTORFLOW_CONFIG") or root / "vectorflow.toml").expanduser().resolve()
    file = _read_file(config)
    endpoints = {}
    for name in EXCHANGES:
        section = file.exchanges.get(name, _ExchangeFile())
        env_url = env.get(f"VECTORFLOW_{name.upper()}_URL") or None
        url = (
            check_base_url(env_url, name=f"VECTORFLOW_{name.upper()}_URL")
            if env_url
            else section.url
        )
        ws_name = f"VECTORFLOW_{name.upper()}_WS_URL"
        env_ws = env.get(ws_name) or None
        ws_url = check_ws_url(env_ws, name=ws_name) if env_ws else section.ws_url
        endpoints[name] = ExchangeEndpoints(url=url, urls=dict(section.urls), ws_url=ws_url)
    resilience = resolve_resilience(file.resilience, env)
    return Settings(
        data_dir=root,
        config_path=config,
        workers=_env_int(env, "VECTORFLOW_WORKERS") or file.workers,
        markets_cache_hours=file.markets_cache_hours,
        request_timeout_seconds=file.request_timeout_seconds,
        flush_rows=file.flush_rows,
        signal_timeframes=tuple(file.signal_timeframes),
        tpo_row_sizes=dict(file.tpo_row_sizes),
        series=file.series,
        endpoints=endpoints,
        resilience=resilience,
        backtest=_backtest_env(file.backtest, env),
        playbooks=file.playbooks.with_env(env),
        lake=file.lake,
        webhook_url=_webhook_url(env) or file.notifications.webhook_url,
        notify_playbooks=file.notifications.playbooks,
        notify_min_confidence=file.notifications.playbooks_min_confidence,
        storage=_storage(env.get("VECTORFLOW_LAKE_URL", "").strip() or file.lake.url, root,
                         resilience.shared_state_url, env),  # fmt: skip
        reports_url=_reports_url(env) or file.reports.url,
    )


def _storage(url: str, data_dir: Path, shared_url: str, env: dict[str, str]) -> Storage:
    """The lake's storage; a bad s3://bucket/prefix URL fails now, at start."""
    try:
        return open_storage(url, data_dir, shared_url=shared_url, env=env)
    except ValueError as exc:
        raise InvalidInput(f"VECTORFLOW_LAKE_URL: {exc}") from None


def _reports_url(env: dict[str, str]) -> str | None:
    value = env.get("VECTORFLOW_REPORTS_URL", "").strip()
    return check_http_url(value, name="VECTORFLOW_REPORTS_URL") if value else None


def _webhook_url(env: dict[str, str]) -> str | None:
    value = env.get("VECTORFLOW_WEBHOOK_URL", "").strip()
    return check_http_url(value, name="VECTORFLOW_WEBHOOK_URL") if value else None
