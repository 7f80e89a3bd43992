"""The grid engine against vectorbt: every metric of every set within 1e-9 of a vectorbt
Portfolio's, long only and both sides, with and without stops; its block sums are those of
vectorbt's own returns."""

from __future__ import annotations

import numpy as np
import pytest

from tests.backtest.helpers import bars_from_closes, random_bars, settings, signal_frame
from vectorflow.backtest.engine import simulate_grid
from vectorflow.backtest.grid import param_grid, run_grid, simulate_params, strategy_signals
from vectorflow.backtest.metrics import METRICS, raw_metrics
from vectorflow.backtest.overfitting import block_sums
from vectorflow.backtest.portfolio import simulate
from vectorflow.backtest.strategies import Signals, all_strategies, get_strategy

NAMES = [s.name for s in all_strategies()]


def _assert_metrics_equal(ours, reference) -> None:
    for name in METRICS:
        a = np.asarray(ours[name], dtype=np.float64)
        b = np.asarray(reference[name], dtype=np.float64)
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        assert np.array_equal(a[np.isinf(a)], b[np.isinf(a)]), name
        finite = np.isfinite(b)
        np.testing.assert_allclose(a[finite], b[finite], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("both_sides, stops", [(False, False), (True, True)])
def test_every_metric_equals_vectorbts(name, both_sides, stops):
    bars = random_bars(900, seed=31)
    strategy = get_strategy(name)
    stop_levels = dict(sl_stop=[0.01, 0.03], tp_stop=[0.02]) if stops else {}
    combos = param_grid(strategy, "default", **stop_levels)
    ps = settings(fees=0.0005, slippage=0.0005, cash=1000.0, both_sides=both_sides)
    signals = signal_frame(bars)
    reference = raw_metrics(simulate_params(strategy, bars, combos, ps, signals=signals))
    ours = run_grid(strategy, bars, combos, ps, signals=signals).metrics
    assert reference["trades"].sum() > 0
    _assert_metrics_equal(ours, reference)


def test_edge_cases_equal_vectorbts():
    """No trades, a trade open at the end, exits without entries, a reversal on the last bar."""
    bars = bars_from_closes([100, 102, 101, 105, 103, 99, 100, 104, 104, 104, 98])
    n = len(bars)
    entries, exits = np.zeros((n, 4), bool), np.zeros((n, 4), bool)
    entries[[1], 1] = True  # held to the end
    exits[[2, 5], 2] = True  # nothing to exit
    entries[[0, 7], 3], exits[[4, 10], 3] = True, True
    for both in (False, True):
        ps = settings(fees=0.001, slippage=0.001, cash=100.0, both_sides=both)
        sig = Signals(entries, exits, exits, entries)
        metrics, _ = simulate_grid(bars, sig, ps)
        _assert_metrics_equal(dict(zip(METRICS, metrics.T, strict=True)),
                              raw_metrics(simulate(bars, sig, ps)))  # fmt: skip


def test_block_sums_are_those_of_vectorbts_returns():
    bars = random_bars(1000, seed=32)
    strategy = get_strategy("ma_cross")
    combos = param_grid(strategy, "small")
    ps = settings(fees=0.001, cash=1000.0, both_sides=True)
    grid = run_grid(strategy, bars, combos, ps, blocks=8)
    returns = np.asarray(simulate_params(strategy, bars, combos, ps).returns())
    expected = block_sums(returns, 8)
    assert grid.blocks.shape == (len(combos), 8, 5)
    assert expected[:, :, 0].min() == 1000 // 8  # the oldest 1000 % 8 bars are left out
    np.testing.assert_allclose(grid.blocks, expected, rtol=1e-9, atol=1e-12)


def test_signals_shared_across_sets_equal_one_set_at_a_time():
    bars = random_bars(600, seed=33)
    ma = get_strategy("ma_cross")
    combos = [{"fast": 5, "slow": 20}, {"fast": 5, "slow": 30}, {"fast": 20, "slow": 30}]
    together = strategy_signals(ma, bars, combos, None)
    for j, combo in enumerate(combos):
        alone = strategy_signals(ma, bars, [combo], None)
        np.testing.assert_array_equal(together.entries[:, j], alone.entries[:, 0])
        np.testing.assert_array_equal(together.exits[:, j], alone.exits[:, 0])
