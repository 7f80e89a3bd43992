"""Per-run metrics exactly as vectorbt computes them, and nulls (with a reason) for inf and NaN.

The project adds no arithmetic of its own: every number is a vectorbt method on the portfolio,
as fractions (vectorbt's `stats()` shows some of them in percent). The grid engine
(`vectorflow.backtest.engine`) gives the same numbers without building a Portfolio:

| column | vectorbt |
|---|---|
| total_return | `pf.total_return()` |
| benchmark_return | `pf.total_benchmark_return()` (buy and hold, no fees) |
| sharpe_ratio, sortino_ratio, calmar_ratio | `pf.get_returns_acc(year_freq='365 days').<ratio>()` |
| max_drawdown | `pf.max_drawdown()` (a negative fraction; 0 when the value never fell) |
| win_rate, profit_factor | `pf.trades.closed.win_rate()`, `.profit_factor()` (1) |
| trades | `pf.trades.count()` (open ones included, `stats()`'s "Total Trades") |
| closed_trades | `pf.trades.closed.count()` |
| exposure | `pf.position_coverage()`: the fraction of bars holding a position |

(1) Closed trades only, as in `pf.stats()`: a trade still open at the end of the window is not
counted in the win rate or the profit factor (it is in `trades`, and in the returns).

vectorbt gives inf or NaN where a ratio has no meaning (no trades: Sharpe inf; no closed trades:
win rate and profit factor NaN; no losing trade: profit factor inf). Those are stored as null,
with the reason in `null_reasons`, never as a made-up number.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from vectorflow.backtest.portfolio import YEAR_FREQ

RATIO_METRICS: tuple[str, ...] = (
    "total_return",
    "benchmark_return",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "exposure",
)
COUNT_METRICS: tuple[str, ...] = ("trades", "closed_trades")
METRICS: tuple[str, ...] = RATIO_METRICS + COUNT_METRICS


def raw_metrics(pf, year_freq: str = YEAR_FREQ) -> pd.DataFrame:
    """vectorbt's metrics of every column of `pf` (one row each, inf and NaN left as they are)."""
    returns = pf.get_returns_acc(year_freq=year_freq)
    trades, closed = pf.trades, pf.trades.closed
    values = {
        "total_return": pf.total_return(),
        "benchmark_return": pf.total_benchmark_return(),
        "sharpe_ratio": returns.sharpe_ratio(),
        "sortino_ratio": returns.sortino_ratio(),
        "calmar_ratio": returns.calmar_ratio(),
        "max_drawdown": pf.max_drawdown(),
        "win_rate": closed.win_rate(),
        "profit_factor": closed.profit_factor(),
        "exposure": pf.position_coverage(),
        "trades": trades.count(),
        "closed_trades": closed.count(),
    }
    columns = len(pf.wrapper.columns)
    frame = pd.DataFrame(
        {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in values.items()},
        index=pd.RangeIndex(columns),
    )
    return frame.astype({k: np.int64 for k in COUNT_METRICS})


def _kind(value: float) -> str:
    return "NaN" if math.isnan(value) else ("+inf" if value > 0 else "-inf")


def _reason(name: str, value: float, trades: int, closed: int) -> str:
    """Why vectorbt gave inf or NaN for `name`, from the run's trade counts."""
    kind = _kind(value)
    if name in ("win_rate", "profit_factor") and closed == 0:
        why = "no closed trades" + (" (open trades are not counted)" if trades else "")
    elif name == "profit_factor" and kind == "+inf":
        why = "no losing closed trade"
    elif name in ("sharpe_ratio", "sortino_ratio", "calmar_ratio") and trades == 0:
        why = "no trades: every return is zero"
    elif name in ("sharpe_ratio", "sortino_ratio") and kind == "+inf":
        why = "returns without volatility" if name == "sharpe_ratio" else "no negative return"
    elif name == "calmar_ratio":
        why = "no drawdown"
    else:
        why = "undefined for this run"
    return f"{kind}: {why}"


def clean_metrics(raw: dict) -> tuple[dict, str | None]:
    """(metrics with inf/NaN replaced by None, JSON {metric: reason} or None when all finite)."""
    trades, closed = int(raw["trades"]), int(raw["closed_trades"])
    clean: dict = {"trades": trades, "closed_trades": closed}
    reasons = {}
    for name in RATIO_METRICS:
        value = float(raw[name])
        if math.isfinite(value):
            clean[name] = value
        else:
            clean[name] = None
            reasons[name] = _reason(name, value, trades, closed)
    return clean, (json.dumps(reasons, sort_keys=True) if reasons else None)


def rank_values(metrics: pd.DataFrame, metric: str) -> np.ndarray:
    """Positions of `metrics` rows best first by `metric` (higher is better; inf and NaN last,
    ties by total return, then grid order)."""
    key = metrics[metric].to_numpy(np.float64)
    tie = metrics["total_return"].to_numpy(np.float64)
    finite = np.isfinite(key)
    order = np.lexsort(
        (
            np.arange(len(key)),
            -np.where(np.isfinite(tie), tie, -np.inf),
            -np.where(finite, key, -np.inf),
            ~finite,
        )
    )
    return order
