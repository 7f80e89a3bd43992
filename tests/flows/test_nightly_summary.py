"""The nightly's summary of its backtests when a strategy fails alone (no Prefect run)."""

from __future__ import annotations

from flows.backtest import leader_rows
from flows.nightly import _results, backtest_notes
from vectorflow.units import Status

BTC = {"exchange": "binance", "market": "spot", "symbol": "BTC/USDT", "timeframe": "1h"}
ETH = {"exchange": "bybit", "market": "linear", "symbol": "ETH/USDT:USDT", "timeframe": "1h"}
BOARD_ROW = {
    "strategy": "ma_cross", "params": '{"fast": 10, "slow": 30}', "selection_metric":
    "sharpe_ratio", "oos_windows": 6, "trials": 4, "dsr": 0.91, "pbo": 0.125,
    "oos_total_return": 0.0499, "oos_sharpe_ratio": 1.5, "oos_max_drawdown": -0.08,
    "oos_win_rate": 0.5, "oos_profit_factor": 1.3, "oos_trades": 12, "is_total_return": 0.1,
    "is_sharpe_ratio": 2.0, "is_max_drawdown": -0.05,
}  # fmt: skip
EXPLODED = "StrategyError: exploder raised ZeroDivisionError at mine.py:9"


def _night():
    summary = {**BTC, "runs": 10, "trades": 12, "report": "/r/b.html",
               "leaderboard": [BOARD_ROW], "failed": {"exploder": EXPLODED}}  # fmt: skip
    failures = [
        {**BTC, "error": EXPLODED, "strategy": "exploder"},  # landed with the others
        {**ETH, "error": "InvalidInput: no candles stored"},  # the whole series
    ]
    return [summary], failures


def test_a_failed_strategy_fails_its_series_unit_with_the_rows_the_others_landed():
    results = _results(*_night())
    assert [(r.unit.label, r.status, r.rows_written) for r in results] == [
        ("binance spot BTC/USDT 1h", Status.FAILED, 10),
        ("bybit linear ETH/USDT:USDT 1h", Status.FAILED, 0),
    ]  # one result per series: the strategy's failure is not a second unit
    assert results[0].error == f"exploder: {EXPLODED}"
    assert results[1].error == "InvalidInput: no candles stored"


def test_notes_count_failed_series_and_name_failed_strategies():
    notes = backtest_notes(*_night())
    assert notes == [
        "backtests: 1 series backtested, 1 failed; strategies run: ma_cross; 10 runs, 12 trades",
        "strategies failed: exploder",
        "best out of sample: binance spot BTC/USDT 1h ma_cross fast=10 slow=30: total_return "
        "0.0499, sharpe_ratio 1.5, max_drawdown -0.08, trades 12",
    ]


def test_leader_rows_carry_the_chained_result_and_the_overfitting_statistics():
    (row,) = leader_rows(_night()[0])
    assert row["series"] == "binance spot BTC/USDT 1h" and row["report"] == "/r/b.html"
    assert (row["oos_windows"], row["trials"], row["dsr"], row["pbo"]) == (6, 4, 0.91, 0.125)
    assert row["oos_total_return"] == 0.0499 and row["is_sharpe_ratio"] == 2.0
