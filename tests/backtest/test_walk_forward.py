"""Walk-forward windows: out-of-sample parts never overlap the in-sample parts that chose."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.backtest.helpers import random_bars, settings
from vectorflow.backtest.chain import chain_choices
from vectorflow.backtest.grid import param_grid, run_grid
from vectorflow.backtest.metrics import METRICS, rank_values
from vectorflow.backtest.strategies import get_strategy
from vectorflow.backtest.walk_forward import (
    days_to_bars,
    evaluate_window,
    holdout_window,
    rolling_windows,
)
from vectorflow.errors import InvalidInput


@pytest.mark.parametrize(
    "n, ins, outs, most",
    [(1000, 300, 100, 50), (1000, 300, 100, 3), (457, 200, 57, 9), (50, 40, 10, 5)],
)
def test_rolling_windows_never_overlap(n, ins, outs, most):
    windows = rolling_windows(n, ins, outs, most)
    assert 1 <= len(windows) <= most
    assert windows[-1].out_end == n  # the latest window ends with the data
    for w in windows:
        assert 0 <= w.in_start < w.in_end == w.out_start < w.out_end <= n
        assert (w.in_end - w.in_start, w.out_end - w.out_start) == (ins, outs)
        in_bars = set(range(w.in_start, w.in_end))
        assert in_bars.isdisjoint(range(w.out_start, w.out_end))
    for a, b in zip(windows, windows[1:], strict=False):
        assert a.out_end == b.out_start  # out-of-sample parts tile the end of the data
    if most >= (n - ins) // outs:
        assert windows[0].in_start < outs  # as many windows as fit


def test_windows_that_do_not_fit_are_invalid_input():
    with pytest.raises(InvalidInput, match="fewer than one walk-forward window"):
        rolling_windows(100, 90, 20, 5)
    with pytest.raises(InvalidInput, match="too few"):
        holdout_window(3, 0.5)
    assert not holdout_window(100, 1.0).has_out
    w = holdout_window(100, 0.7)
    assert (w.in_start, w.in_end, w.out_start, w.out_end) == (0, 70, 70, 100)
    assert days_to_bars(20, "1h") == 480 and days_to_bars(7, "4h") == 42


def test_parameters_are_chosen_in_sample_only():
    bars = random_bars(900, seed=21)
    window = rolling_windows(len(bars), 500, 200, 1)[0]
    strategy = get_strategy("ma_cross")
    combos = param_grid(strategy, "default")
    ps = settings(fees=0.001, cash=1000.0)
    res = evaluate_window(strategy, bars, combos, window, ps, metric="sharpe_ratio", leaders=3)
    alone = run_grid(strategy, bars.iloc[window.in_start : window.in_end], combos, ps)
    assert res.leaders == [int(i) for i in rank_values(alone.metrics, "sharpe_ratio")[:3]]
    # altering every out-of-sample bar changes nothing about the choice
    other = bars.copy()
    other.iloc[window.out_start :] *= np.linspace(1.0, 0.5, len(bars) - window.out_start)[:, None]
    res2 = evaluate_window(strategy, other, combos, window, ps, metric="sharpe_ratio", leaders=3)
    assert res2.leaders == res.leaders
    pd.testing.assert_frame_equal(res2.grid.metrics, res.grid.metrics, check_exact=True)
    assert res2.stats == res.stats and res.stats.trials == len(combos)  # DSR, PBO: in sample
    assert not res2.out_metrics.equals(res.out_metrics)  # ...while the judgement does change
    out_index = res.out_portfolio.wrapper.index
    assert out_index.equals(bars.index[window.out_start : window.out_end])
    assert res.in_portfolio.wrapper.index.equals(bars.index[window.in_start : window.in_end])
    sharpe = res.grid.metrics["sharpe_ratio"]
    assert np.isinf(sharpe).any()  # sets that never trade get vectorbt's inf: never "best"
    assert sharpe.iloc[res.leaders[0]] == sharpe[np.isfinite(sharpe)].max()


def test_chained_equity_is_the_product_of_its_parts():
    # Regression: with walk-forward windows the board showed the single best out-of-sample run
    # of any window instead of the windows' choices chained
    bars = random_bars(1400, seed=22)
    strategy = get_strategy("ma_cross")
    combos = param_grid(strategy, "small")
    ps = settings(fees=0.001, slippage=0.0005, cash=1000.0, both_sides=True)
    results = [evaluate_window(strategy, bars, combos, w, ps, leaders=2)
               for w in rolling_windows(len(bars), 400, 150, 4)]  # fmt: skip
    parts = [r.out_portfolio for r in results]
    chain = chain_choices(parts, ps)
    assert chain.windows == 4 and chain.equity.index.is_unique
    growths = [1 + r.out_metrics.iloc[0]["total_return"] for r in results]  # the choices
    assert chain.raw["total_return"] == pytest.approx(np.prod(growths) - 1, rel=1e-12)
    ends = chain.equity.groupby(np.repeat(np.arange(4), 150)).last().to_numpy()
    np.testing.assert_allclose(ends, np.cumprod(growths), rtol=1e-12)
    returns = pd.concat([pf.returns().iloc[:, 0] for pf in parts])
    np.testing.assert_array_equal(chain.returns.to_numpy(), returns.to_numpy())
    acc = returns.vbt.returns(freq=ps.freq, year_freq=ps.year_freq)
    assert chain.raw["sharpe_ratio"] == acc.sharpe_ratio()
    assert chain.raw["max_drawdown"] == acc.max_drawdown()
    assert chain.raw["trades"] == sum(r.out_metrics.iloc[0]["trades"] for r in results)
    # one part is exactly that run: vectorbt's own metrics
    alone = chain_choices(parts[:1], ps).raw
    for name in METRICS:
        assert alone[name] == pytest.approx(results[0].out_metrics.iloc[0][name], rel=1e-9,
                                            nan_ok=True), name  # fmt: skip
