"""Strategies: shapes, independent columns, hand-made cases, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.backtest.helpers import bars_from_closes, random_bars, settings, signal_frame
from vectorflow.backtest.grid import param_grid, strategy_signals
from vectorflow.backtest.portfolio import simulate
from vectorflow.backtest.strategies import all_strategies, get_strategy
from vectorflow.errors import InvalidInput

NAMES = [s.name for s in all_strategies()]


def test_library_has_the_seven_strategies():
    assert set(NAMES) == {
        "ma_cross", "rsi_reversion", "bollinger_breakout", "donchian_breakout",
        "value_area_reversion", "trap_fade", "regime_trend",
    }  # fmt: skip
    with pytest.raises(InvalidInput, match="nope"):
        get_strategy("nope")


@pytest.mark.parametrize("name", NAMES)
def test_one_column_per_parameter_set_each_on_its_own(name):
    bars = random_bars(700, seed=11)
    signals = signal_frame(bars)
    strategy = get_strategy(name)
    combos = param_grid(strategy, "default")
    together = strategy_signals(strategy, bars, combos, signals)
    assert together.entries.shape == (len(bars), len(combos))
    assert together.entries.dtype == bool and together.short_exits.dtype == bool
    assert together.entries.any(), "the grid never enters: the test data is too dull"
    for i in (0, len(combos) - 1):
        alone = strategy_signals(strategy, bars, [combos[i]], signals)
        for a, b in zip(together, alone, strict=True):
            np.testing.assert_array_equal(a[:, i], b[:, 0])


def _alter_after(bars: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """The same bars up to k; random, different prices after it."""
    rng = np.random.default_rng(seed)
    factor = np.ones(len(bars))
    factor[k + 1 :] = np.exp(np.cumsum(rng.normal(0, 0.03, len(bars) - k - 1)))
    return bars.mul(factor, axis=0).assign(volume=bars["volume"])


@pytest.mark.parametrize("name", NAMES)
def test_no_look_ahead(name):
    """Signals and the portfolio up to bar k are unchanged when every later bar changes."""
    bars = random_bars(600, seed=12)
    k = 420
    other = _alter_after(bars, k, seed=13)
    assert not np.allclose(bars["close"].iloc[k + 1 :], other["close"].iloc[k + 1 :])
    strategy = get_strategy(name)
    combos = param_grid(strategy, "default")
    first = strategy_signals(strategy, bars, combos, signal_frame(bars))
    second = strategy_signals(strategy, other, combos, signal_frame(other))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[: k + 1], b[: k + 1])
    ps = settings(fees=0.001, cash=1000.0, both_sides=True)
    value_a = np.asarray(simulate(bars, first, ps).value())
    value_b = np.asarray(simulate(other, second, ps).value())
    np.testing.assert_array_equal(value_a[: k + 1], value_b[: k + 1])


def test_no_look_ahead_through_the_signals_package():
    """Signal strategies on signals_history (vectorflow.signals) of full vs altered bars."""
    from vectorflow.signals.compute import signals_history

    bars = random_bars(1100, seed=14, vol=0.004)
    bars.index = pd.date_range("2024-01-01 00:30", periods=len(bars), freq="30min")
    k = 900
    other = _alter_after(bars, k, seed=15)

    def signals(b: pd.DataFrame) -> pd.DataFrame:
        candles = b.reset_index(drop=True).assign(open_time=b.index - pd.Timedelta("30min"))
        frame = signals_history(candles, timeframe="30m")
        return frame.set_index(pd.to_datetime(frame["as_of"])).reindex(b.index)

    sig_a, sig_b = signals(bars), signals(other)
    assert sig_a["tpo_poc"].notna().sum() > 500 and sig_a["regime"].str.startswith("trend").any()
    for name in ("value_area_reversion", "trap_fade", "regime_trend"):
        strategy = get_strategy(name)
        combos = param_grid(strategy, "default")
        first = strategy_signals(strategy, bars, combos, sig_a)
        second = strategy_signals(strategy, other, combos, sig_b)
        assert first.entries.any() or first.short_entries.any(), name
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a[: k + 1], b[: k + 1])


def test_trap_fade_enters_against_the_trap_and_leaves_after_hold():
    bars = bars_from_closes([100.0] * 30)
    signals = pd.DataFrame(index=bars.index)
    signals["last_trap_type"] = [None] * 10 + ["bear_trap"] * 10 + ["bull_trap"] * 10
    signals["last_trap_time"] = [pd.NaT] * 10 + [bars.index[10]] * 10 + [bars.index[20]] * 10
    signals["last_trap_level"] = [np.nan] * 10 + [99.0] * 10 + [101.0] * 10
    sig = get_strategy("trap_fade").func(bars, signals, hold=4, max_age=0, sweeps=False)
    assert list(np.flatnonzero(sig.entries[:, 0])) == [10]  # long after the bear trap
    assert list(np.flatnonzero(sig.short_entries[:, 0])) == [20]  # short after the bull trap
    assert 14 in np.flatnonzero(sig.exits[:, 0]) and 24 in np.flatnonzero(sig.short_exits[:, 0])
    sweeps_only = signals.assign(
        last_trap_type=signals["last_trap_type"].replace("bear_trap", "sweep_low")
    )
    off = get_strategy("trap_fade").func(bars, sweeps_only, hold=4, max_age=0, sweeps=False)
    on = get_strategy("trap_fade").func(bars, sweeps_only, hold=4, max_age=0, sweeps=True)
    assert not off.entries.any() and list(np.flatnonzero(on.entries[:, 0])) == [10]


def test_value_area_reversion_fades_back_to_poc():
    bars = bars_from_closes([100, 97, 94, 96, 98, 100.5, 101, 106, 104, 99.5])
    signals = pd.DataFrame({"tpo_poc": 100.0, "tpo_vah": 105.0, "tpo_val": 95.0}, index=bars.index)
    sig = get_strategy("value_area_reversion").func(bars, signals, lookback=2, target=1.0)
    assert list(np.flatnonzero(sig.entries[:, 0])) == [3]  # back above VAL after closing below
    after = np.arange(len(bars))
    assert np.flatnonzero(sig.exits[:, 0] & (after > 3))[0] == 5  # out at POC
    assert list(np.flatnonzero(sig.short_entries[:, 0])) == [8]  # back below VAH
    assert np.flatnonzero(sig.short_exits[:, 0] & (after > 8))[0] == 9


def test_regime_trend_trades_only_in_trend_regimes():
    bars = bars_from_closes(np.linspace(100, 130, 200))  # a steady rise: fast SMA above slow
    labels = pd.Series(["range|normal_vol"] * 100 + ["trend_up|high_vol"] * 100, index=bars.index)
    strategy = get_strategy("regime_trend")
    calm_only = strategy.func(bars, labels.to_frame("regime"), fast=5, slow=20, high_vol=False)
    any_vol = strategy.func(bars, labels.to_frame("regime"), fast=5, slow=20, high_vol=True)
    assert not calm_only.entries.any()
    assert list(np.flatnonzero(any_vol.entries[:, 0])) == [100]
    assert not any_vol.short_entries.any()
