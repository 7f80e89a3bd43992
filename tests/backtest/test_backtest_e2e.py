"""End to end: candles landed from the simulator into a temp lake, backtested from the lake only,
results in backtest_runs / backtest_trades / the views, the report, the flow, the CLI."""

from __future__ import annotations

import json
import math
import shutil

import duckdb
import pytest

from tests.backtest.helpers import land_bundled
from tests.conftest import query_catalog, run_cli
from vectorflow.backtest.run import BacktestRequest, backtest_series
from vectorflow.config import load_settings
from vectorflow.settings.backtest import SeriesRef

LINEAR = SeriesRef(exchange="binance", market="linear", symbol="BTC/USDT:USDT", timeframe="1h")
SPOT = SeriesRef(exchange="binance", market="spot", symbol="BTC/USDT", timeframe="1h")
METRIC_COLUMNS = ["total_return", "sharpe_ratio", "sortino_ratio", "calmar_ratio",
                  "max_drawdown", "win_rate", "profit_factor", "exposure"]  # fmt: skip


@pytest.fixture(scope="module")
def landed(sim, tmp_path_factory):
    """A data dir holding the simulator's bundled-history candles (1h, and 30m for TPO)."""
    data_dir = tmp_path_factory.mktemp("bt") / "data"
    land_bundled(sim, data_dir, (LINEAR, SPOT))
    return data_dir


def test_walk_forward_backtest_fills_runs_trades_and_views(landed):
    settings = load_settings(landed, env={})
    request = BacktestRequest(LINEAR, grid="small", walk_forward=True)
    result = backtest_series(settings, request)
    assert result.windows >= 2 and result.signals_source in ("stored", "computed")
    assert not result.skipped()
    runs = query_catalog(landed, "SELECT sample, count(*), count(DISTINCT run_id) "
                         "FROM backtest_runs GROUP BY ALL ORDER BY ALL")  # fmt: skip
    assert sum(r[1] for r in runs) == result.runs and all(r[1] == r[2] for r in runs)
    assert {r[0] for r in runs} == {"in", "out"}
    board = query_catalog(landed, "SELECT strategy, params, oos_sharpe_ratio, is_sharpe_ratio, "
                          "is_rank, oos_runs FROM strategy_leaderboard")  # fmt: skip
    assert len(board) == 7
    leaders = {o.strategy: min(3, o.combos) for o in result.outcomes}  # 3 leaders (or fewer sets)
    assert all(
        r[5] == leaders[r[0]] * result.windows for r in board
    )  # each window's, out of sample
    assert all(json.loads(r[1]) for r in board)
    # trades: only the leaders' runs and every out-of-sample run, each with all its trades
    stored = query_catalog(
        landed,
        "SELECT r.sample, r.leader, r.trades, count(t.run_id) FROM backtest_runs r "
        "LEFT JOIN backtest_trades t USING (run_id) "
        "GROUP BY r.run_id, r.sample, r.leader, r.trades",
    )
    assert all(n == 0 for sample, leader, _, n in stored if not leader)
    assert all(n == trades for sample, leader, trades, n in stored if leader)
    assert all(leader for sample, leader, _, _ in stored if sample == "out")
    assert sum(n for *_, n in stored) == result.trades > 0
    # metrics: fractions, never inf; a null always says why
    for row in query_catalog(
        landed, f"SELECT {', '.join(METRIC_COLUMNS)}, null_reasons FROM backtest_runs"
    ):
        *values, reasons = row
        assert all(v is None or math.isfinite(v) for v in values)
        assert (reasons is not None) == any(v is None for v in values)
    history = query_catalog(landed, "SELECT strategy, oos_runs FROM strategy_history")
    assert len(history) == 7
    page = (landed / "reports" / "backtest_binance_linear_BTC_USDT_USDT_1h.html").read_text()
    assert result.report.endswith("backtest_binance_linear_BTC_USDT_USDT_1h.html")
    assert "plotly.min.js" in page and "trap_fade" in page and "Leaderboard" in page
    assert (landed / "reports" / "plotly.min.js").stat().st_size > 1_000_000
    # the same backtest again writes the same run ids: one row per run in the views
    again = backtest_series(settings, request, report=False)
    assert again.runs == result.runs
    ((count, distinct),) = query_catalog(
        landed, "SELECT count(*), count(DISTINCT run_id) FROM backtest_runs"
    )
    assert count == distinct == result.runs


def test_spot_is_long_only_with_spot_fees(landed):
    settings = load_settings(landed, env={})
    request = BacktestRequest(
        SPOT, strategies=("ma_cross",), grid="small", walk_forward=False, metric="calmar_ratio"
    )
    result = backtest_series(settings, request, report=False)
    assert result.split == "holdout" and result.windows == 1
    (best,) = result.leaderboard()
    calmars = [r["oos_calmar_ratio"] for r in result.outcomes[0].board]
    assert best["oos_calmar_ratio"] == max(c for c in calmars if c is not None)
    rows = query_catalog(landed, "SELECT DISTINCT direction, fees, slippage FROM backtest_runs "
                  "WHERE market = 'spot'")  # fmt: skip
    assert rows == [("long_only", 0.001, 0.0005)]
    sides = query_catalog(landed, "SELECT DISTINCT side FROM backtest_trades WHERE market = 'spot'")
    assert sides == [("long",)]
    fees = query_catalog(landed, "SELECT DISTINCT fees FROM backtest_runs WHERE market = 'linear'")
    assert fees in ([], [(0.0005,)])


def test_backtest_flow_and_cli_publish_leaders(landed, prefect_api, capsys):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from vectorflow.cli import main

    code = main(["--data-dir", str(landed), "backtest", "--exchange", "binance", "--symbol",
                 "BTC/USDT:USDT", "--timeframe", "1h", "--strategy", "ma_cross", "--strategy",
                 "rsi_reversion", "--grid", "small"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ma_cross" in out and "rsi_reversion" in out and "oos_sharpe" in out
    assert "report: " in out and "backtest_binance_linear_BTC_USDT_USDT_1h.html" in out
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["backtest-leaders"]))
        )
    table = artifacts[0].data
    rows = table if isinstance(table, list) else json.loads(table)
    assert {r["strategy"] for r in rows} == {"ma_cross", "rsi_reversion"}
    assert "Infinity" not in json.dumps(rows) and "NaN" not in json.dumps(rows)


def test_cli_rejects_bad_requests_with_exit_2(landed):
    env = {"VECTORFLOW_DATA_DIR": str(landed)}
    base = ["backtest", "--exchange", "binance", "--timeframe", "1h"]
    done = run_cli([*base, "--symbol", "BTC/USDT", "--strategy", "nope"], env)
    assert done.returncode == 2 and "unknown strategy 'nope'" in done.stderr
    done = run_cli([*base, "--symbol", "ETH/USDT"], env)
    assert done.returncode == 2 and "no candles stored for binance spot ETH/USDT 1h" in done.stderr
    done = run_cli([*base, "--symbol", "BTC/USDT", "--market", "linear"], env)
    assert done.returncode == 2 and "is spot" in done.stderr


def test_nightly_command_runs_every_series(landed, prefect_api, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(landed / "lake" / "candles", data_dir / "lake" / "candles")
    (data_dir / "vectorflow.toml").write_text("[backtest]\nstrategies = []\nleaders = 2\n")
    done = run_cli(["nightly", "--grid", "small", "--no-walk-forward", "--strategy", "ma_cross",
                    "--strategy", "regime_trend"], {"VECTORFLOW_DATA_DIR": str(data_dir)},
                   prefect_api)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for step in ("compaction", "signals refresh", "playbook grading"):
        assert f"{step}: ok" in done.stdout
    assert done.stdout.count("report: ") == 2  # both stored 1h series
    assert done.stdout.count("signals stored") == 2  # refreshed first, then read from the lake
    board = query_catalog(data_dir, "SELECT market, strategy, oos_runs FROM strategy_leaderboard "
                   "ORDER BY ALL")  # fmt: skip
    assert board == [
        ("linear", "ma_cross", 2), ("linear", "regime_trend", 1),  # its small grid has one set
        ("spot", "ma_cross", 2), ("spot", "regime_trend", 1),
    ]  # fmt: skip
    with duckdb.connect(str(data_dir / "vectorflow.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM backtest_trades").fetchone()[0] > 0
