"""Metrics are vectorbt's own numbers; inf/NaN become nulls with a reason."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from tests.backtest.helpers import GOLDEN_CLOSES, bars_from_closes, random_bars, settings
from vectorflow.backtest.metrics import METRICS, clean_metrics, rank_values, raw_metrics
from vectorflow.backtest.portfolio import simulate
from vectorflow.backtest.strategies import Signals, ma_cross
from vectorflow.lake.schema import BACKTEST_RUNS


def _signals(n: int, entries: list[int], exits: list[int]) -> Signals:
    e, x = np.zeros((n, 1), bool), np.zeros((n, 1), bool)
    e[entries], x[exits] = True, True
    return Signals(e, x)


def test_golden_case():
    bars = bars_from_closes(GOLDEN_CLOSES)
    pf = simulate(bars, _signals(8, [0, 4], [3, 5]), settings(cash=100.0))
    m, reasons = clean_metrics(raw_metrics(pf).iloc[0].to_dict())
    assert m["total_return"] == pytest.approx(0.0092233, abs=1e-7)
    assert m["sharpe_ratio"] == pytest.approx(5.690332, abs=1e-6)
    assert m["max_drawdown"] == pytest.approx(-0.038835, abs=1e-6)
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(1.22619, abs=1e-5)
    assert (m["trades"], m["closed_trades"]) == (2, 2)
    assert m["exposure"] == pytest.approx(4 / 8)  # in the market at bars 0-2 and 4
    assert m["benchmark_return"] == pytest.approx(104 / 100 - 1)
    assert reasons is None


def test_metrics_equal_vectorbt_stats_on_the_same_portfolio():
    bars = random_bars(1500, seed=3)
    sig = ma_cross(bars, fast=[5, 10, 20], slow=[30, 50, 100])
    pf = simulate(bars, sig, settings(fees=0.001, slippage=0.0005, cash=1000.0, both_sides=True))
    ours = raw_metrics(pf)
    percent = {
        "total_return": "Total Return [%]",
        "benchmark_return": "Benchmark Return [%]",
        "win_rate": "Win Rate [%]",
    }
    plain = {
        "sharpe_ratio": "Sharpe Ratio",
        "sortino_ratio": "Sortino Ratio",
        "calmar_ratio": "Calmar Ratio",
        "profit_factor": "Profit Factor",
        "trades": "Total Trades",
        "closed_trades": "Total Closed Trades",
    }
    for col in range(3):
        stats = pf.stats(column=col, settings=dict(year_freq="365 days"))
        row = ours.iloc[col]
        assert row["trades"] > 5  # a real portfolio, not an empty one
        for name, title in percent.items():
            assert row[name] == pytest.approx(stats[title] / 100, rel=1e-12)
        for name, title in plain.items():
            assert row[name] == pytest.approx(stats[title], rel=1e-12)
        assert row["max_drawdown"] == pytest.approx(-stats["Max Drawdown [%]"] / 100, rel=1e-12)
        held = np.asarray(pf.assets())[:, col] != 0
        assert row["exposure"] == pytest.approx(held.mean())


def test_no_trades_stores_nulls_with_reasons():
    bars = bars_from_closes(GOLDEN_CLOSES)
    pf = simulate(bars, _signals(8, [], []), settings())
    m, reasons = clean_metrics(raw_metrics(pf).iloc[0].to_dict())
    why = json.loads(reasons)
    for name in ("sharpe_ratio", "sortino_ratio", "win_rate", "profit_factor"):
        assert m[name] is None
        assert name in why
    assert why["sharpe_ratio"].startswith("+inf: no trades")  # vectorbt gives inf here
    assert why["profit_factor"] == "NaN: no closed trades"
    assert m["total_return"] == 0.0 and m["trades"] == 0
    row = dict.fromkeys(BACKTEST_RUNS.schema.names) | m | {"null_reasons": reasons}
    table = pa.Table.from_pylist([row], schema=BACKTEST_RUNS.schema.remove_metadata())
    assert table.column("sharpe_ratio").null_count == 1  # stored as null, not a number


def test_open_trades_are_not_counted_in_win_rate():
    bars = bars_from_closes(GOLDEN_CLOSES)
    pf = simulate(bars, _signals(8, [4], []), settings())
    m, reasons = clean_metrics(raw_metrics(pf).iloc[0].to_dict())
    assert (m["trades"], m["closed_trades"]) == (1, 0)
    assert m["win_rate"] is None and m["total_return"] == pytest.approx(104 / 103 - 1)
    assert json.loads(reasons)["win_rate"] == "NaN: no closed trades (open trades are not counted)"


def test_rank_puts_inf_and_nan_last():
    import pandas as pd

    frame = pd.DataFrame(
        {
            "sharpe_ratio": [1.0, np.inf, 3.0, np.nan, 3.0],
            "total_return": [0.1, 0.2, 0.1, 0.5, 0.2],
        }
    )
    assert list(rank_values(frame, "sharpe_ratio")) == [
        4,
        2,
        0,
        3,
        1,
    ]  # nulls last, among them by total return
    assert set(METRICS) >= {"sharpe_ratio", "profit_factor", "exposure", "trades"}
