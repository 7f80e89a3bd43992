"""The report's figures: one colour per strategy in every panel, params as a trader reads them,
the in-sample heatmap on the choice's slice."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vectorflow.backtest.outcome import InSampleGrid, StrategyOutcome
from vectorflow.backtest.report_figures import (
    format_params,
    heatmap_figure,
    series_figure,
    strategy_colours,
)

NAMES = ["ma_cross", "rsi_reversion", "bollinger_breakout", "donchian_breakout",
         "value_area_reversion", "trap_fade", "regime_trend"]  # fmt: skip


class _Result:
    """The parts of a SeriesBacktest the series figure reads."""

    def __init__(self, outcomes):
        index = pd.date_range("2024-01-01", periods=50, freq="1h")
        close = pd.Series(np.linspace(100, 110, 50), index=index)
        self.candles = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1,
                                     "close": close})  # fmt: skip
        self.benchmark = close / close.iloc[0]
        self.outcomes = outcomes


def _outcome(name: str, seed: int) -> StrategyOutcome:
    index = pd.date_range("2024-01-01", periods=50, freq="1h")
    equity = pd.Series(np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, 50))), index)
    trades = pd.DataFrame({"entry_time": index[[3, 20]], "entry_price": [101.0, 104.0],
                           "exit_time": index[[10, 49]], "exit_price": [102.0, 110.0],
                           "side": ["long", "short"], "status": ["closed", "open"]})  # fmt: skip
    return StrategyOutcome(name, equity=equity, trades=trades)


def test_one_distinct_colour_per_strategy_in_every_panel():
    # Regression: ma_cross and trap_fade were both red, rsi_reversion and regime_trend both
    # purple, and the drawdowns took other colours than the legend's
    colours = strategy_colours(NAMES)
    assert len(set(colours.values())) == len(NAMES)
    assert len(set(strategy_colours([f"s{i}" for i in range(24)]).values())) == 24
    fig = series_figure(_Result([_outcome(n, i) for i, n in enumerate(NAMES)]), colours)
    for name in NAMES:
        traces = [t for t in fig.data if t.legendgroup == name]
        assert len(traces) == 5  # long entry, short entry, exits, equity, drawdown
        assert {t.line.color if t.mode != "markers" else t.marker.color for t in traces} == {
            colours[name]
        }
        assert sum(bool(t.showlegend is None or t.showlegend) for t in traces) == 1
    assert [t.type for t in fig.data][0] == "candlestick"


def test_params_read_like_a_trader_writes_them():
    assert format_params('{"fast": 10, "slow": 30}') == "fast=10 slow=30"
    assert format_params({"alpha": 2.0, "window": 20}) == "alpha=2 window=20"
    assert format_params({"hold": 6, "sweeps": True, "x": 0.015}) == "hold=6 sweeps=true x=0.015"


def test_heatmap_shows_the_in_sample_metric_on_the_choices_slice():
    combos = [{"window": w, "lower": lo, "upper": up}
              for w in (7, 14) for lo in (20, 25, 30) for up in (70, 80)]  # fmt: skip
    values = [float(i) for i in range(len(combos))]
    values[3] = None  # inf or NaN in sample: an empty cell
    chosen = combos.index({"window": 14, "lower": 25, "upper": 80})
    fig = heatmap_figure(InSampleGrid("sharpe_ratio", combos, values, chosen, 0), "#123456", "t")
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 2  # the third parameter with the most values... as a slider
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == ["70", "80"] and slider.active == 1
    star = fig.data[-1]
    assert (star.x, star.y) == (("25",), ("14",)) or (star.x, star.y) == (("14",), ("25",))
    assert star.marker.color == "#123456"
    shown = heatmaps[1].z  # upper = 80
    assert np.nanmax(np.asarray(shown, dtype=float)) == max(
        v for c, v in zip(combos, values, strict=True) if c["upper"] == 80 and v is not None
    )
    assert heatmap_figure(InSampleGrid("sharpe_ratio", [{"a": 1}], [1.0], 0, 0), "#000", "") is None
