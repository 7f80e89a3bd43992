"""The nightly backtests on Dask (`[backtest] dask_address`): the same rows as in one process.

Two single-threaded Dask workers of a LocalCluster on 127.0.0.1 speaking TCP (every task and
its data pickled over a socket, as to workers on other hosts). They run in this process
(`processes=False`) so they share its compiled numba kernels: a worker process compiles vectorbt's
`simulate_from_signals_nb` first (~12 s each; benchmarks/nightly_dask.py runs process workers).
"""

from __future__ import annotations

import shutil

import pytest

from flows.runners import backtest_task_runner
from tests.backtest.helpers import land_bundled
from tests.conftest import query_catalog
from vectorflow.settings.backtest import SeriesRef

SERIES = (
    SeriesRef(exchange="binance", market="linear", symbol="BTC/USDT:USDT", timeframe="1h"),
    SeriesRef(exchange="bybit", market="spot", symbol="BTC/USDT", timeframe="1h"),
)
#: Differ between two runs of the same backtest by design: when it ran, and its batch
RUN_STAMPS = ("run_at", "batch_id", "ingested_at")


def _rows(data_dir, view: str, order: str):
    frame = query_catalog(data_dir, f"FROM {view} ORDER BY {order}", frame=True)
    return frame.drop(columns=[c for c in RUN_STAMPS if c in frame])


def _nightly(data_dir, dask_address: str) -> dict:
    from flows.nightly import nightly

    (data_dir / "vectorflow.toml").write_text(
        f'[backtest]\nleaders = 2\ndask_address = "{dask_address}"\n'
        "[backtest.windows]\nin_sample_days = 10\nout_of_sample_days = 5\nmax_windows = 3\n"
    )
    outcome = nightly(grid="small", data_dir=str(data_dir))
    assert isinstance(outcome, dict), outcome
    assert outcome["failed"] == [] and len(outcome["series"]) == len(SERIES)
    return outcome


def test_backtest_task_runner_follows_the_setting():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    local_threads = backtest_task_runner("")
    assert isinstance(local_threads, ThreadPoolTaskRunner) and local_threads._max_workers == 1
    remote = backtest_task_runner("tcp://10.0.0.5:8786")
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"
    local = backtest_task_runner("local")
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs["host"] == "127.0.0.1"


@pytest.mark.slow
def test_nightly_on_a_dask_local_cluster_lands_the_same_leaderboard(sim, prefect_api, tmp_path):
    from distributed import LocalCluster

    threads, dask = tmp_path / "threads" / "data", tmp_path / "dask" / "data"
    land_bundled(sim, threads, SERIES)
    shutil.copytree(threads / "lake" / "candles", dask / "lake" / "candles")

    single = _nightly(threads, "")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        spread = _nightly(dask, cluster.scheduler_address)
        executed = [w.state.executed_count for w in cluster.workers.values()]
    # per series: a plan, one task per strategy (7), a landing; both workers had a share
    assert sum(executed) == len(SERIES) * 9 and min(executed) > 0, executed

    assert [s["leaderboard"] for s in spread["series"]] == [
        s["leaderboard"] for s in single["series"]
    ]
    board = _rows(threads, "strategy_leaderboard", "ALL")
    assert len(board) == len(SERIES) * 7 and board["oos_sharpe_ratio"].notna().any()
    assert board.equals(_rows(dask, "strategy_leaderboard", "ALL"))
    runs = _rows(threads, "backtest_runs", "run_id")
    assert runs.equals(_rows(dask, "backtest_runs", "run_id"))
    trades = _rows(threads, "backtest_trades", "run_id, entry_time")
    assert len(trades) > 0 and trades.equals(_rows(dask, "backtest_trades", "run_id, entry_time"))
