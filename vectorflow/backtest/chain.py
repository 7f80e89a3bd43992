"""A strategy's honest out-of-sample result: each window's in-sample choice (rank 1) run on that
window's out-of-sample bars, the parts chained into one equity curve.

Each part starts flat with the previous part's ending equity (the first with the initial cash),
so the chained equity is the product of the parts' growths and its bar returns are the parts'
own returns one after the other. The metrics are `raw_metrics`' columns, as vectorbt computes
them over the chained curve: Sharpe, Sortino, Calmar and max drawdown by vectorbt's returns
accessor on the chained returns, the total return from the chained equity, trade counts summed
over the parts, win rate and profit factor over every closed trade (P&L scaled by its part's
starting equity), exposure over every bar, buy and hold chained the same way. One part (a
holdout split) gives vectorbt's own metrics of that run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vectorflow.backtest.portfolio import PortfolioSettings

TRADE_COLUMNS = ("entry_time", "entry_price", "exit_time", "exit_price", "side", "status")


@dataclass
class Chain:
    """The chosen sets' out-of-sample parts, chained."""

    equity: pd.Series  # value / initial cash, at each bar's close
    returns: pd.Series  # the parts' bar returns, one after the other
    raw: dict  # raw_metrics' columns of the chained curve (inf and NaN as vectorbt gives them)
    windows: int  # parts chained
    trades: pd.DataFrame  # the choices' trades (TRADE_COLUMNS), for the report's markers


def _first_column(values, n: int) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(n, -1)[:, 0]


def _part_trades(pf, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The trades of the portfolio's first column (the choice), as TRADE_COLUMNS."""
    records = pf.trades.values
    records = records[records["col"] == 0]
    return pd.DataFrame(
        {
            "entry_time": index[records["entry_idx"]],
            "entry_price": records["entry_price"],
            "exit_time": index[records["exit_idx"]],
            "exit_price": records["exit_price"],
            "side": np.where(records["direction"] == 0, "long", "short"),
            "status": np.where(records["status"] == 0, "open", "closed"),
            "pnl": records["pnl"],
        }
    )


def _profit_factor(pnl: np.ndarray) -> float:
    """vectorbt's profit factor of closed trades' P&L: NaN without any, inf without a loss."""
    if len(pnl) == 0:
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.divide(pnl[pnl > 0].sum(), abs(pnl[pnl < 0].sum())))


def chain_choices(portfolios: list, settings: PortfolioSettings) -> Chain | None:
    """Chain the first column (the choice) of each window's out-of-sample vectorbt Portfolio."""
    if not portfolios:
        return None
    equity, returns, trades, level, bench, held = [], [], [], 1.0, 1.0, 0
    for pf in portfolios:
        index = pf.wrapper.index
        value = _first_column(pf.value(), len(index)) / settings.init_cash
        equity.append(pd.Series(value * level, index=index))
        returns.append(pd.Series(_first_column(pf.returns(), len(index)), index=index))
        part = _part_trades(pf, index)
        part["pnl"] *= level  # in the chained equity's currency
        trades.append(part)
        held += int((_first_column(pf.assets(), len(index)) != 0).sum())
        bench *= 1.0 + float(np.atleast_1d(pf.total_benchmark_return())[0])
        level *= value[-1]
    chained = pd.concat(returns)
    acc = chained.vbt.returns(freq=settings.freq, year_freq=settings.year_freq)
    book = pd.concat(trades, ignore_index=True)
    closed = book.loc[book["status"] == "closed", "pnl"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = float(np.divide((closed > 0).sum(), len(closed)))
    raw = {
        "total_return": level - 1.0,
        "benchmark_return": bench - 1.0,
        "sharpe_ratio": float(acc.sharpe_ratio()),
        "sortino_ratio": float(acc.sortino_ratio()),
        "calmar_ratio": float(acc.calmar_ratio()),
        "max_drawdown": float(acc.max_drawdown()),
        "win_rate": win_rate,
        "profit_factor": _profit_factor(closed),
        "exposure": held / len(chained),
        "trades": len(book),
        "closed_trades": len(closed),
    }
    return Chain(pd.concat(equity), chained, raw, len(portfolios), book[list(TRADE_COLUMNS)])
