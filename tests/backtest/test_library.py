"""User strategies: from a folder of the settings file and from the `vectorflow.strategies`
entry point group, grids from the settings file; a broken one fails alone, saying where."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from tests.backtest.helpers import random_bars, settings, signal_frame
from vectorflow.backtest.grid import param_grid, run_grid
from vectorflow.backtest.library import StrategyError, strategy_library
from vectorflow.backtest.run import backtest_config, check_options, strategy_names
from vectorflow.backtest.strategies import get_strategy
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput

GOOD = '''
import numpy as np
from vectorflow.backtest.strategies import per_set


@per_set
def breakout_days(bars, *, lookback, exit_after=12):
    """Long on a close above the last `lookback` closes, out `exit_after` bars later."""
    close = bars["close"]
    entries = (close > close.shift(1).rolling(lookback).max()).to_numpy()
    return entries, np.roll(entries, exit_after)


def fade_regime(bars, signals, *, quiet):
    """Vectorized: one column per value of `quiet`."""
    calm = signals["regime"].str.endswith("normal_vol").to_numpy()[:, None]
    up = (bars["close"].pct_change() > 0).to_numpy()[:, None]
    go = calm & up & np.asarray(quiet)[None, :]
    return go, ~go


fade_regime.signal_columns = ("regime",)


def helper(x):  # not a strategy: no keyword-only parameters
    return x
'''

BROKEN_AT_RUN = '''
def divider(bars, *, by):
    ratio = bars["close"] / 0
    raise ValueError(f"cannot divide by {by}")


def wrong_shape(bars, *, n):
    return bars["close"].to_numpy() > 0, bars["close"].to_numpy() < 0
'''


def _data_dir(tmp_path, files: dict[str, str], toml: str):
    folder = tmp_path / "strategies"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    data = tmp_path / "data"
    data.mkdir()
    (data / "vectorflow.toml").write_text('[backtest]\nstrategy_paths = ["../strategies"]\n'
                                          + toml)  # fmt: skip
    return load_settings(data, env={})


def test_folder_strategies_run_with_grids_from_the_settings_file(tmp_path):
    cfg = _data_dir(tmp_path, {"good.py": GOOD}, "[backtest.grids.breakout_days]\n"
                    "lookback = [24, 48]\n[backtest.grids.fade_regime]\nquiet = [true, false]\n")
    library = strategy_library(backtest_config(cfg))
    days, regime = library.get("breakout_days"), library.get("fade_regime")
    assert "helper" not in library.names() and not days.error and not regime.error
    assert param_grid(days, "default") == [{"lookback": 24, "exit_after": 12},
                                           {"lookback": 48, "exit_after": 12}]  # fmt: skip
    assert param_grid(days, "small") == param_grid(days, "default")
    assert days.summary.startswith("Long on a close") and days.source.endswith("good.py:6")
    assert regime.needs_signals and regime.signal_columns == ("regime",)
    bars = random_bars(500, seed=40)
    ps = settings(fees=0.001, cash=1000.0)
    grid = run_grid(days, bars, param_grid(days, "default"), ps)
    assert (grid.metrics["trades"] > 0).all()
    grid = run_grid(regime, bars, param_grid(regime, "default"), ps, signals=signal_frame(bars))
    assert grid.metrics["trades"].iloc[0] > 0 and grid.metrics["trades"].iloc[1] == 0
    assert set(strategy_names(cfg, _request())) >= {"ma_cross", "breakout_days", "fade_regime"}
    check_options(["breakout_days"], settings=cfg)
    with pytest.raises(InvalidInput, match="unknown strategy 'breakout_dayz'"):
        check_options(["breakout_dayz"], settings=cfg)


def _request(*names):
    from vectorflow.backtest.run import BacktestRequest
    from vectorflow.settings.backtest import SeriesRef

    return BacktestRequest(SeriesRef(exchange="binance", market="spot", symbol="BTC/USDT",
                                     timeframe="1h"), strategies=names)  # fmt: skip


def test_a_broken_strategy_fails_alone_with_file_and_line(tmp_path):
    cfg = _data_dir(
        tmp_path,
        {"good.py": GOOD, "run.py": BROKEN_AT_RUN, "syntax.py": "def oops(bars, *, a):\n  (\n"},
        "[backtest.grids.breakout_days]\nlookback = [24]\nwindow = [3]\n"
        "[backtest.grids.divider]\nby = [2]\n[backtest.grids.wrong_shape]\nn = [1, 2]\n",
    )
    library = strategy_library(backtest_config(cfg))
    assert "syntax.py does not import: SyntaxError" in library.get("syntax").error
    assert "syntax.py:2" in library.get("syntax").error
    bad_grid = library.get("breakout_days").error
    assert "[backtest.grids.breakout_days] names no parameter of breakout_days: window" in bad_grid
    assert "no values for fade_regime's parameter 'quiet': add it to [backtest.grids.fade_regime]" \
        in library.get("fade_regime").error
    bars, ps = random_bars(300, seed=41), settings()
    divider = library.get("divider")
    with pytest.raises(StrategyError, match=r"divider failed: ValueError: cannot divide by \[2\] "
                       r"\(.*run\.py:4\)"):  # fmt: skip
        run_grid(divider, bars, param_grid(divider, "default"), ps)
    shape = library.get("wrong_shape")
    with pytest.raises(StrategyError, match=r"entries has shape \(300,\); expected .* \(300, 2\)"):
        run_grid(shape, bars, param_grid(shape, "default"), ps)
    # the built-ins are untouched
    assert strategy_library(backtest_config(cfg)).get("ma_cross") == get_strategy("ma_cross")


def test_settings_grids_replace_a_builtin_grid(tmp_path):
    cfg = _data_dir(tmp_path, {}, "[backtest.grids.ma_cross]\nfast = [3]\nslow = [9, 12]\n"
                    "[backtest.grids.rsi_reversion]\nwindow = [14]\n")  # fmt: skip
    library = strategy_library(backtest_config(cfg))
    assert param_grid(library.get("ma_cross"), "small") == [{"fast": 3, "slow": 9},
                                                            {"fast": 3, "slow": 12}]  # fmt: skip
    assert "must give every parameter of rsi_reversion" in library.get("rsi_reversion").error
    with pytest.raises(InvalidInput, match="grids.x.a is empty"):
        _data_dir(tmp_path / "other", {}, "[backtest.grids.x]\na = []\n")


def test_entry_point_strategies(tmp_path, monkeypatch):
    package = tmp_path / "site"
    (package / "vf_plugin").mkdir(parents=True)
    (package / "vf_plugin" / "__init__.py").write_text(textwrap.dedent('''
        import numpy as np

        def always_long(bars, *, hold=5):
            entries = np.zeros((len(bars), len(hold)), dtype=bool)
            entries[0] = True
            return entries, np.zeros_like(entries)
    '''))  # fmt: skip
    info = package / "vf_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vf-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[vectorflow.strategies]\nhold_it = vf_plugin:always_long\nmissing = vf_plugin:nope\n"
    )
    monkeypatch.syspath_prepend(str(package))
    cfg = load_settings(tmp_path, env={})
    library = strategy_library(backtest_config(cfg))
    hold_it = library.get("hold_it")
    assert not hold_it.error and param_grid(hold_it, "default") == [{"hold": 5}]
    grid = run_grid(hold_it, random_bars(100, seed=42), [{"hold": 5}], settings())
    assert grid.metrics["trades"].iloc[0] == 1 and "missing" in library.names()
    assert "does not load: AttributeError" in library.get("missing").error
    sys.modules.pop("vf_plugin", None)


def test_strategies_written_per_set_equal_vectorized_ones():
    from vectorflow.backtest.strategies import per_set

    ma = get_strategy("ma_cross")
    one_at_a_time = per_set(lambda bars, *, fast, slow: tuple(ma.func(bars, fast=[fast],
                                                                        slow=[slow])))
    bars = random_bars(400, seed=43)
    together = ma.func(bars, fast=[5, 10], slow=[20, 50])
    apart = one_at_a_time(bars, fast=np.array([5, 10]), slow=np.array([20, 50]))
    for a, b in zip(together, apart, strict=True):
        np.testing.assert_array_equal(a, b)
