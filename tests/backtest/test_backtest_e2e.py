"""End to end: candles landed from the simulator into a temp lake, backtested from the lake only,
results in backtest_runs / backtest_trades / the views, the report, the flow, the CLI."""

from __future__ import annotations

import json
import math
import shutil

import duckdb
import numpy as np
import pytest

from tests.backtest.helpers import land_bundled
from tests.conftest import query_catalog, run_cli
from vectorflow.backtest.data import load_bars
from vectorflow.backtest.grid import param_grid
from vectorflow.backtest.metrics import raw_metrics
from vectorflow.backtest.portfolio import portfolio_settings, simulate
from vectorflow.backtest.run import BacktestRequest, backtest_series
from vectorflow.backtest.strategies import Signals, get_strategy
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
    assert not result.skipped() and not result.failed()
    runs = query_catalog(landed, "SELECT sample, count(*), count(DISTINCT run_id) "
                         "FROM backtest_runs GROUP BY ALL ORDER BY ALL")  # fmt: skip
    assert sum(r[1] for r in runs) == result.runs and all(r[1] == r[2] for r in runs)
    assert {r[0]: r[1] for r in runs}["chained"] == 7  # one per strategy
    board = query_catalog(landed, "SELECT strategy, params, oos_windows, trials, dsr, pbo, "
                          "oos_total_return, is_sharpe_ratio, is_run_id, batch_id "
                          "FROM strategy_leaderboard")  # fmt: skip
    assert len(board) == 7
    combos = {o.strategy: o.combos for o in result.outcomes}
    for strategy, params, windows, trials, dsr, pbo, oos_return, _, is_run, batch in board:
        assert windows == result.windows and trials == combos[strategy] and batch == result.batch_id
        assert json.loads(params) and oos_return is not None and is_run is not None
        assert dsr is None or 0 <= dsr <= 1
        assert (pbo is None) == (trials == 1) and (pbo is None or 0 <= pbo <= 1)
    # the chained result is the product of the windows' choices (in-sample rank 1) out of sample
    parts = query_catalog(landed, "SELECT strategy, window_index, total_return FROM backtest_runs "
                          "WHERE sample = 'out' AND is_rank = 1 ORDER BY ALL")  # fmt: skip
    for strategy, *_, oos_return, _, _, _ in board:
        growth = math.prod(1 + r for s, _, r in parts if s == strategy)
        assert oos_return == pytest.approx(growth - 1, rel=1e-9, abs=1e-12)
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
        landed, f"SELECT {', '.join(METRIC_COLUMNS)}, dsr, pbo, null_reasons FROM backtest_runs"
    ):
        *values, reasons = row
        assert all(v is None or math.isfinite(v) for v in values)
        stated = json.loads(reasons or "{}")
        named = [*METRIC_COLUMNS, "dsr", "pbo"]
        assert all(name in stated for name, v in zip(named, values, strict=True)
                   if v is None and name in METRIC_COLUMNS)  # fmt: skip
    history = query_catalog(landed, "SELECT strategy, oos_windows, oos_total_return, pbo "
                            "FROM strategy_history")  # fmt: skip
    assert sorted((s, w, r) for s, w, r, _ in history) == sorted(
        (s, w, r) for s, _, w, _, _, _, r, *_ in board
    )  # the same honest figure as the board, night by night
    page = (landed / "reports" / "backtest_binance_linear_BTC_USDT_USDT_1h.html").read_text()
    assert result.report.endswith("backtest_binance_linear_BTC_USDT_USDT_1h.html")
    assert "trap_fade" in page and "Leaderboard" in page and "fast=10 slow=50" in page
    assert '"type":"candlestick"' in page and '"type":"heatmap"' in page and "DSR" in page
    assert "<script src=" not in page and len(page) > 3_000_000  # plotly.js inline: offline
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
    rows = query_catalog(landed, "SELECT DISTINCT direction, fees, slippage FROM backtest_runs "
                  "WHERE market = 'spot'")  # fmt: skip
    assert rows == [("long_only", 0.001, 0.0005)]
    sides = query_catalog(landed, "SELECT DISTINCT side FROM backtest_trades WHERE market = 'spot'")
    assert sides == [("long",)]
    fees = query_catalog(landed, "SELECT DISTINCT fees FROM backtest_runs WHERE market = 'linear'")
    assert fees in ([], [(0.0005,)])


def test_board_is_the_in_sample_winner_run_out_of_sample(landed):
    # Regression: the board showed the best of the leaders' out-of-sample runs, a choice made
    # after seeing the out-of-sample data
    """Recomputed with vectorbt alone: every set in sample, the best by the metric, that set on
    the bars after the split; the board shows exactly its figures, whatever the other leaders
    did out of sample."""
    settings = load_settings(landed, env={})
    request = BacktestRequest(SPOT, strategies=("ma_cross",), grid="default", walk_forward=False,
                              metric="sortino_ratio")  # fmt: skip
    result = backtest_series(settings, request, report=False)
    (row,) = result.leaderboard()
    _, _, bars = load_bars(settings.storage, SPOT)
    cut = round(len(bars) * settings.backtest.in_sample_fraction)
    ps = portfolio_settings(settings.backtest, "binance", "spot", "1h")
    ma = get_strategy("ma_cross")
    combos = param_grid(ma, "default")
    in_sample = raw_metrics(simulate(bars.iloc[:cut], ma.func(bars.iloc[:cut], **{
        k: [c[k] for c in combos] for k in ("fast", "slow")}), ps))  # fmt: skip
    key = in_sample["sortino_ratio"].where(np.isfinite(in_sample["sortino_ratio"]))
    winner = combos[int(key.idxmax())]
    sig = ma.func(bars, fast=[winner["fast"]], slow=[winner["slow"]])
    out = raw_metrics(simulate(bars.iloc[cut:], Signals(sig.entries[cut:], sig.exits[cut:]), ps))
    assert json.loads(row["params"]) == winner and row["oos_windows"] == 1
    for name in METRIC_COLUMNS + ["trades"]:
        expected = out[name].iloc[0]
        if np.isfinite(expected):
            assert row[f"oos_{name}"] == pytest.approx(expected, rel=1e-9, abs=1e-12), name
        else:
            assert row[f"oos_{name}"] is None, name
    assert row["is_sortino_ratio"] == pytest.approx(key.max(), rel=1e-9)
    others = query_catalog(landed, "SELECT is_rank, sortino_ratio FROM backtest_runs WHERE "
                           f"sample = 'out' AND batch_id = '{result.batch_id}' ORDER BY is_rank")
    assert [r[0] for r in others] == [1, 2, 3]  # the other leaders stay for inspection
    assert row["trials"] == len(combos) and 0 <= row["dsr"] <= 1 and 0 <= row["pbo"] <= 1


def test_backtest_flow_and_cli_publish_leaders(landed, prefect_api, capsys, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from vectorflow.cli import main

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)  # a server: the command is a flow run
    code = main(["--data-dir", str(landed), "backtest", "--exchange", "binance", "--symbol",
                 "BTC/USDT:USDT", "--timeframe", "1h", "--strategy", "ma_cross", "--strategy",
                 "rsi_reversion", "--grid", "small"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, out
    assert f"running as a Prefect flow run on {prefect_api}" in err
    assert "ma_cross" in out and "rsi_reversion" in out and "oos_sharpe" in out
    assert "dsr" in out and "pbo" in out and "fast=" in out
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


USER_STRATEGIES = """
import numpy as np

from vectorflow.backtest.strategies import per_set


@per_set
def dip_buyer(bars, *, drop, hold):
    '''Buy a close `drop` below the previous one, sell `hold` bars later.'''
    change = bars["close"].pct_change().to_numpy()
    entries = change < -drop
    return entries, np.roll(entries, hold)


def exploder(bars, *, window):
    '''Raises, as a broken user strategy does.'''
    ratio = len(window) / 0
    return bars["close"] > ratio, bars["close"] < ratio
"""


def test_nightly_command_runs_every_series(landed, prefect_api, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(landed / "lake" / "candles", data_dir / "lake" / "candles", symlinks=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "mine.py").write_text(USER_STRATEGIES)
    (data_dir / "vectorflow.toml").write_text(
        '[backtest]\nstrategies = []\nleaders = 2\nstrategy_paths = ["../mine"]\n'
        "[backtest.grids.dip_buyer]\ndrop = [0.005, 0.01]\nhold = [3, 6]\n"
        "[backtest.grids.exploder]\nwindow = [5]\n"
    )
    done = run_cli(["nightly", "--grid", "small", "--no-walk-forward", "--strategy", "ma_cross",
                    "--strategy", "regime_trend", "--strategy", "dip_buyer", "--strategy",
                    "exploder"], {"VECTORFLOW_DATA_DIR": str(data_dir)},
                   prefect_api)  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]  # exploder failed, alone
    for step in ("compaction", "signals refresh", "playbook grading"):
        assert f"{step}: ok" in done.stdout
    assert done.stdout.count("report: ") == 2  # both stored 1h series
    assert done.stdout.count("signals stored") == 2  # refreshed first, then read from the lake
    line = next(i for i, text in enumerate(USER_STRATEGIES.splitlines(), 1) if "/ 0" in text)
    failures = [f for f in done.stderr.splitlines() if f.startswith("failed: ")]
    assert len(failures) == 2 and all("exploder" in f and "ZeroDivisionError" in f
                                      and f"mine.py:{line}" in f for f in failures)  # fmt: skip
    board = query_catalog(data_dir, "SELECT market, strategy, oos_windows, trials "
                          "FROM strategy_leaderboard ORDER BY ALL")  # fmt: skip
    assert board == [
        ("linear", "dip_buyer", 1, 4), ("linear", "ma_cross", 1, 4),
        ("linear", "regime_trend", 1, 1),  # its small grid has one set
        ("spot", "dip_buyer", 1, 4), ("spot", "ma_cross", 1, 4), ("spot", "regime_trend", 1, 1),
    ]  # fmt: skip
    with duckdb.connect(str(data_dir / "vectorflow.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM backtest_trades").fetchone()[0] > 0


def _runs(data_dir) -> list[tuple]:
    return query_catalog(data_dir, "SELECT strategy, params, sample, window_index, leader, "
                         f"{', '.join(METRIC_COLUMNS)}, trades FROM backtest_runs ORDER BY ALL")


def test_backtest_lands_the_same_runs_in_process_and_as_a_flow_run(landed, prefect_api, tmp_path):
    dirs = {side: tmp_path / side / "data" for side in ("local", "flow")}
    for data_dir in dirs.values():
        shutil.copytree(landed / "lake", data_dir / "lake", symlinks=True)
    args = ["backtest", "--exchange", "binance", "--symbol", "BTC/USDT:USDT", "--timeframe",
            "1h", "--strategy", "ma_cross", "--grid", "small", "--walk-forward"]  # fmt: skip
    local = run_cli(args, {"VECTORFLOW_DATA_DIR": str(dirs["local"])})
    flow = run_cli(args, {"VECTORFLOW_DATA_DIR": str(dirs["flow"])}, prefect_api)
    assert local.returncode == flow.returncode == 0, local.stderr[-2000:] + flow.stderr[-2000:]
    assert "running in this process" in local.stderr and "flow run" in flow.stderr
    assert _runs(dirs["local"]) == _runs(dirs["flow"]) and len(_runs(dirs["local"])) > 4
    board = [line for line in local.stdout.splitlines() if line.startswith("ma_cross")]
    assert board == [line for line in flow.stdout.splitlines() if line.startswith("ma_cross")]
