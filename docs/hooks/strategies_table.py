"""The backtest strategies with their parameter grids, from `vectorflow.backtest.strategies`."""

from __future__ import annotations

from cells import cell

from vectorflow.backtest.strategies import all_strategies


def _grid(grid) -> str:
    return "<br>".join(f"`{name}`: {', '.join(str(v) for v in values)}"
                       for name, values in grid.items())


def render(_argument: str | None = None) -> str:
    """One row per strategy: name, what it does, signals it reads, its two grids."""
    lines = ["| strategy | what it does | signals it reads | `default` grid | `small` grid |",
             "|---|---|---|---|---|"]
    for strategy in all_strategies():
        reads = ", ".join(f"`{c}`" for c in strategy.signal_columns) or "–"
        lines.append(f"| `{strategy.name}` | {cell(strategy.summary)} | {reads} | "
                     f"{_grid(strategy.grids['default'])} | {_grid(strategy.grids['small'])} |")
    return "\n".join(lines)
