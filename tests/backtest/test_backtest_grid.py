"""Grids: chunked runs give exactly the unchunked numbers; grids, stops and chunk sizes."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.backtest.helpers import random_bars, settings, signal_frame
from vectorflow.backtest.grid import chunk_size, param_grid, run_grid, simulate_params
from vectorflow.backtest.metrics import raw_metrics
from vectorflow.backtest.strategies import get_strategy
from vectorflow.errors import InvalidInput


@pytest.mark.parametrize("name", ["ma_cross", "trap_fade"])
def test_chunked_and_unchunked_grids_are_identical(name):
    bars = random_bars(1200, seed=5)
    strategy = get_strategy(name)
    combos = param_grid(strategy, "default", sl_stop=[0.02, 0.05], tp_stop=[0.08])
    ps = settings(fees=0.0005, slippage=0.0005, cash=1000.0, both_sides=True)
    signals = signal_frame(bars)
    whole = run_grid(strategy, bars, combos, ps, signals=signals, chunk=len(combos))
    chunked = run_grid(strategy, bars, combos, ps, signals=signals, chunk=7)
    assert (whole.chunks, chunked.chunks) == (1, -(-len(combos) // 7))
    pd.testing.assert_frame_equal(whole.metrics, chunked.metrics, check_exact=True)
    assert whole.metrics["trades"].sum() > 0


def test_memory_budget_sets_the_chunk_size():
    bars = random_bars(2000, seed=6)
    strategy = get_strategy("ma_cross")
    combos = param_grid(strategy, "default")
    ps = settings(cash=1000.0)
    size = chunk_size(len(bars), memory_budget_mb=4)
    assert 1 <= size < len(combos)  # 4 MiB cannot hold the whole grid at once
    small = run_grid(strategy, bars, combos, ps, memory_budget_mb=4)
    big = run_grid(strategy, bars, combos, ps, memory_budget_mb=4096)
    assert (small.chunk_size, big.chunks) == (size, 1)
    assert small.chunks > 1
    pd.testing.assert_frame_equal(small.metrics, big.metrics, check_exact=True)


def test_each_column_is_its_own_run():
    bars = random_bars(800, seed=7)
    strategy = get_strategy("bollinger_breakout")
    combos = param_grid(strategy, "small")
    ps = settings(fees=0.001, cash=1000.0)
    together = run_grid(strategy, bars, combos, ps).metrics
    for i, combo in enumerate(combos):
        alone = raw_metrics(simulate_params(strategy, bars, [combo], ps))
        pd.testing.assert_series_equal(
            together.iloc[i], alone.iloc[0], check_names=False, check_exact=True
        )


def test_param_grid():
    ma = get_strategy("ma_cross")
    combos = param_grid(ma, "default")
    assert combos and all(c["fast"] < c["slow"] for c in combos)
    assert {"fast": 50, "slow": 200} in combos and {"fast": 50, "slow": 20} not in combos
    assert len(param_grid(ma, "small", sl_stop=[0.01, 0.02])) == 2 * len(param_grid(ma, "small"))
    assert param_grid(ma, values={"fast": [3], "slow": [9]}) == [{"fast": 3, "slow": 9}]
    with pytest.raises(InvalidInput, match="huge"):
        param_grid(ma, "huge")
    with pytest.raises(InvalidInput, match="window"):
        param_grid(ma, values={"window": [3]})
