"""The [backtest] settings: fees per exchange and market, validation, portfolio settings."""

from __future__ import annotations

import pandas as pd
import pytest

from vectorflow.backtest.portfolio import portfolio_settings
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput


def _settings(data_dir, text: str):
    (data_dir / "vectorflow.toml").write_text(text)
    return load_settings(data_dir, env={})


def test_defaults_are_the_documented_costs(data_dir):
    cfg = load_settings(data_dir, env={}).backtest
    assert (cfg.fee("binance", "spot"), cfg.fee("bybit", "linear")) == (0.001, 0.0005)
    assert (cfg.slippage, cfg.init_cash, cfg.leaders, cfg.memory_budget_mb) == (
        0.0005, 10_000.0, 3, 1024.0
    )  # fmt: skip
    ps = portfolio_settings(cfg, "binance", "linear", "4h")
    assert ps.both_sides and ps.freq == pd.Timedelta(hours=4) and ps.year_freq == "365 days"
    assert not portfolio_settings(cfg, "binance", "spot", "1h").both_sides


def test_fees_per_market_and_exchange(data_dir):
    cfg = _settings(
        data_dir,
        "[backtest]\nslippage = 0\n[backtest.fees]\nspot = 0.00075\n"
        "[backtest.exchange_fees.bybit]\nlinear = 0.00055\n",
    ).backtest
    assert cfg.fee("binance", "spot") == 0.00075
    assert cfg.fee("binance", "linear") == 0.0005  # the market default stays
    assert cfg.fee("bybit", "linear") == 0.00055
    assert portfolio_settings(cfg, "bybit", "linear", "1h").fees == 0.00055


@pytest.mark.parametrize(
    "text, named",
    [
        ('[backtest]\nmetric = "alpha"\n', "alpha"),
        ("[backtest.fees]\nspot = 1.5\n", "1.5"),
        ("[backtest]\nsl_stop = [0, 0.1]\n", "stop"),
        ("[backtest]\nleaders = 0\n", "leaders"),
        ("[backtest]\nbogus = 1\n", "bogus"),
    ],
)
def test_bad_settings_are_invalid_input_naming_the_value(data_dir, text, named):
    with pytest.raises(InvalidInput, match=named):
        _settings(data_dir, text)


def test_dask_address_from_the_file_and_the_environment(data_dir):
    assert load_settings(data_dir, env={}).backtest.dask_address == ""
    cfg = _settings(data_dir, '[backtest]\ndask_address = "local"\n').backtest
    assert cfg.dask_address == "local"
    env = {"VECTORFLOW_DASK_ADDRESS": "tcp://10.0.0.5:8786"}
    assert load_settings(data_dir, env=env).backtest.dask_address == "tcp://10.0.0.5:8786"
    assert load_settings(data_dir, env={"VECTORFLOW_DASK_ADDRESS": ""}).backtest.dask_address == (
        "local"
    )  # empty is unset: the file's value stays
    with pytest.raises(InvalidInput, match="VECTORFLOW_DASK_ADDRESS 'nowhere'"):
        load_settings(data_dir, env={"VECTORFLOW_DASK_ADDRESS": "nowhere"})
    with pytest.raises(InvalidInput, match="dask_address"):
        _settings(data_dir, '[backtest]\ndask_address = "http://x"\n')
