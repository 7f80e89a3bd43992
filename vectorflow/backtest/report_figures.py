"""The report's figures (plotly): the series with each strategy's entries and exits above its
chained out-of-sample equity and drawdown, and per strategy a heatmap of the in-sample metric
over its parameter grid (vectorbt's own heatmap helper).

Every strategy has one colour in every panel and in the table (`strategy_colours`); its
markers, equity and drawdown share one legend entry, so one click hides or shows all three.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

#: Distinct colours, in order (plotly's Dark24, then Light24 for a 25th strategy and on).
PALETTE = (
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100", "#750D86",
    "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE",
    "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA", "#6C4516", "#0D2A63", "#AF0038",
    "#FD3216", "#00FE35", "#6A76FC", "#FED4C4", "#FE00CE", "#0DF9FF", "#F6F926", "#FF9616",
)  # fmt: skip
BENCHMARK_COLOUR = "#999999"


def strategy_colours(names: list[str]) -> dict[str, str]:
    """One distinct colour per strategy, by its place in the list."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def format_params(params: str | dict) -> str:
    """Params as a trader reads them: `fast=10 slow=30` (JSON or a dict)."""
    values = json.loads(params) if isinstance(params, str) else params

    def show(v) -> str:
        """One value: integers as they are, floats without trailing zeros, booleans lower case."""
        if isinstance(v, bool):
            return "true" if v else "false"
        return f"{v:g}" if isinstance(v, float) else str(v)

    return " ".join(f"{k}={show(v)}" for k, v in values.items())


def _markers(go, trades: pd.DataFrame, name: str, colour: str) -> list:
    """Entry (triangles: up long, down short) and exit (crosses) markers of one strategy."""
    traces = []
    for side, symbol in (("long", "triangle-up"), ("short", "triangle-down")):
        part = trades[trades["side"] == side]
        if len(part):
            traces.append(go.Scatter(
                x=part["entry_time"], y=part["entry_price"], mode="markers", legendgroup=name,
                showlegend=False, name=f"{name} {side} entry",
                marker=dict(symbol=symbol, size=10, color=colour, line=dict(width=1, color="#000")),
            ))  # fmt: skip
    closed = trades[trades["status"] == "closed"]
    if len(closed):
        traces.append(go.Scatter(
            x=closed["exit_time"], y=closed["exit_price"], mode="markers", legendgroup=name,
            showlegend=False, name=f"{name} exit",
            marker=dict(symbol="x-thin", size=9, color=colour, line=dict(width=2, color=colour)),
        ))  # fmt: skip
    return traces


def series_figure(result, colours: dict[str, str]):
    """Candlesticks with each strategy's entries and exits, its equity and drawdown beneath."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.5, 0.3, 0.2],
                        vertical_spacing=0.03)  # fmt: skip
    candles = result.candles
    if candles is not None and len(candles):
        fig.add_trace(go.Candlestick(
            x=candles.index, open=candles["open"], high=candles["high"], low=candles["low"],
            close=candles["close"], name="price", increasing_line_color="#26a69a",
            decreasing_line_color="#ef5350", opacity=0.6,
        ), row=1, col=1)  # fmt: skip
    if result.benchmark is not None:
        fig.add_trace(go.Scatter(x=result.benchmark.index, y=result.benchmark, name="buy & hold",
                                 line=dict(color=BENCHMARK_COLOUR, dash="dot")), row=2, col=1)
    for outcome in result.outcomes:
        if outcome.equity is None:
            continue
        name, colour = outcome.strategy, colours[outcome.strategy]
        if outcome.trades is not None:
            for trace in _markers(go, outcome.trades, name, colour):
                fig.add_trace(trace, row=1, col=1)
        equity = outcome.equity
        fig.add_trace(go.Scatter(x=equity.index, y=equity, name=name, legendgroup=name,
                                 line=dict(color=colour)), row=2, col=1)  # fmt: skip
        drawdown = equity / equity.cummax() - 1.0  # of the plotted curve, for the eye only
        fig.add_trace(go.Scatter(x=drawdown.index, y=drawdown, name=name, legendgroup=name,
                                 showlegend=False, line=dict(color=colour, width=1)),
                      row=3, col=1)  # fmt: skip
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="equity (x initial cash)", row=2, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=3, col=1)
    fig.update_xaxes(rangeslider_visible=False)
    fig.update_layout(height=900, margin=dict(l=60, r=20, t=30, b=30))
    return fig


def _axes(combos: list[dict]) -> tuple[str, str, str | None, list[str]] | None:
    """(x, y, slider, fixed) parameters of a grid's heatmap: the two varying parameters with
    the most values, a third as a slider, any others fixed at the choice; None below two."""
    names = list(combos[0]) if combos else []
    counts = {k: len({json.dumps(c[k]) for c in combos}) for k in names}
    varying = sorted((k for k in names if counts[k] > 1), key=lambda k: -counts[k])
    if len(varying) < 2:
        return None
    slider = varying[2] if len(varying) > 2 else None
    return varying[0], varying[1], slider, varying[3:]


def heatmap_figure(grid, colour: str, title: str):
    """The in-sample metric over the grid's two main parameters (vectorbt's heatmap; a third
    as a slider, starting on the choice's value), the choice starred; None below two."""
    import plotly.graph_objects as go
    import vectorbt  # noqa: F401 - registers pandas' .vbt accessor

    if grid is None or (axes := _axes(grid.combos)) is None:
        return None
    x, y, slider, fixed = axes
    chosen = grid.combos[grid.chosen]
    keep = [i for i, c in enumerate(grid.combos) if all(c[k] == chosen[k] for k in fixed)]
    levels = [x, y] + ([slider] if slider else [])
    index = pd.MultiIndex.from_tuples([tuple(grid.combos[i][k] for k in levels) for i in keep],
                                      names=levels)  # fmt: skip
    values = pd.Series([np.nan if grid.values[i] is None else grid.values[i] for i in keep],
                       index=index).groupby(level=levels).first()  # fmt: skip
    active = 0  # the slider starts on the choice's slice
    if slider:
        active = sorted(set(values.index.get_level_values(slider))).index(chosen[slider])
    fig = values.vbt.heatmap(x_level=x, y_level=y, slider_level=slider, active=active,
                             fig=go.Figure(), is_x_category=True, is_y_category=True,
                             trace_kwargs=dict(colorbar=dict(title=grid.metric)))  # fmt: skip
    fig.add_trace(go.Scatter(x=[str(chosen[x])], y=[str(chosen[y])], mode="markers", name="chosen",
                             marker=dict(symbol="star", size=16, color=colour,
                                         line=dict(width=1, color="#000"))))  # fmt: skip
    suffix = f"; {', '.join(f'{k}={chosen[k]}' for k in fixed)} fixed" if fixed else ""
    fig.update_layout(title=dict(text=f"{title}{suffix}", font=dict(color=colour, size=14)),
                      height=400, width=520, margin=dict(l=60, r=20, t=60, b=40),
                      xaxis_title=x, yaxis_title=y, showlegend=False)  # fmt: skip
    return fig
