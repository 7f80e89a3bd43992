"""Settings: defaults, then the TOML file, then the environment, then command-line options.

The data dir comes from `VECTORFLOW_DATA_DIR` (default `./data` under the current folder) or the
command line; the settings file is `VECTORFLOW_CONFIG` (default `<data dir>/vectorflow.toml`,
which may be absent). Every key can also be set from the environment: `VECTORFLOW_` and the key,
`__` between nested keys, lists and tables as JSON, e.g. `VECTORFLOW_WORKERS=8`,
`VECTORFLOW_RESILIENCE__BREAKER_FAILURES=3`, `VECTORFLOW_SERIES__SYMBOLS='["ETH/USDT"]'`
(the older short names in `load.ENV_ALIASES` still work). Example file:

    workers = 4                     # concurrent ingest units
    markets_cache_hours = 24        # how long load_markets results are reused
    request_timeout_seconds = 10    # connect+read timeout of every exchange request
    flush_rows = 200000             # rows buffered per series before a Parquet file is written
    signal_timeframes = ["5m", "1h", "4h"]  # series that get signals after ingest (default 5m+)

    [series]                        # what is collected unless a parameter names others
    symbols = ["BTC/USDT", "BTC/USDT:USDT"]
    [tpo_row_sizes]                 # TPO row size per unified symbol (default: from price)
    "BTC/USDT" = 10
    [exchanges.binance]             # where an exchange is reached (simulator, proxy, testnet)
    url = "http://127.0.0.1:8900"
    [resilience]                    # retries, breakers, rate budgets
    breaker_failures = 5
    [backtest]                      # fees, slippage, grids, windows
    slippage = 0.0005
    [playbooks]                     # model, budget, horizon
    token_budget = 200000
    [lake.retention_days]           # retention, merging, grace
    orderbook_levels = 30
    [notifications]                 # `vectorflow up` posts failed runs
    webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"

Each section is a module of this package, depending on pydantic only; the packages that use a
section import it from here. `read_settings` resolves the keys; `vectorflow.config.load_settings`
adds the lake's storage (the lake sits above this package) and is what callers use.
"""

from __future__ import annotations

from vectorflow.settings.exchanges import ExchangeEndpoints
from vectorflow.settings.load import (
    ENV_ALIASES,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    ReadSettings,
    read_settings,
)
from vectorflow.settings.model import SIGNAL_TIMEFRAMES, Settings, SettingsKeys
from vectorflow.settings.series import EXCHANGES, MARKETS

__all__ = [
    "ENV_ALIASES",
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "EXCHANGES",
    "MARKETS",
    "SIGNAL_TIMEFRAMES",
    "ExchangeEndpoints",
    "ReadSettings",
    "Settings",
    "SettingsKeys",
    "read_settings",
]
