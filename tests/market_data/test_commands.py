"""The market-data, compact and backfill commands end to end, on the session's Prefect API."""

from __future__ import annotations

import duckdb
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from tests.conftest import run_cli, sim_env
from vectorflow.lake.scan import snapshot_glob
from vectorflow.lake.schema import DATASETS

DAY = 86_400_000


def _count(data_dir, dataset: str) -> int:
    glob = snapshot_glob(data_dir / "lake", DATASETS[dataset])
    return duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall()[0][0]


def test_market_data_then_compact(prefect_api, sim, data_dir):
    env = sim_env(sim, data_dir)
    done = run_cli(["market-data", "--symbol", "BTC/USDT:USDT", "--period", "1h"], env, prefect_api)
    assert done.returncode == 0, done.stderr[-3000:]
    # 2 exchanges x order book, open interest, funding
    assert [line[:3] for line in done.stdout.splitlines()].count("ok ") == 6
    assert _count(data_dir, "orderbook_levels") == 2 * 2 * 100
    assert _count(data_dir, "open_interest") > 2 * 29 * 24
    assert _count(data_dir, "funding_rates") >= 2 * 29 * 3
    compacted = run_cli(["compact", "--dataset", "open_interest"], env, prefect_api)
    assert compacted.returncode == 0, compacted.stderr[-3000:]
    assert "compacted" in compacted.stdout
    names = [p.name for p in data_dir.glob("lake/open_interest/*/*/*/current/*.parquet")]
    assert sum(n.endswith(".compact.parquet") and not n.startswith("_") for n in names) >= 2
    refused = run_cli(["compact", "--dataset", "nope"], env, prefect_api)
    assert refused.returncode == 2 and "nope" in refused.stderr


def test_backfill_shows_progress_and_reports_it_to_prefect(prefect_api, sim, data_dir):
    since = (sim.now_ms() - 20 * DAY) // DAY * DAY
    args = ["backfill", "--exchange", "bybit", "--market", "spot", "--symbol", "BTC/USDT"]
    done = run_cli(
        [*args, "--timeframe", "1h", "--since", str(since)], sim_env(sim, data_dir), prefect_api
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1/1 series" in done.stderr and "candles" in done.stderr  # the terminal bar's last state
    assert done.stderr.count("1/1 series") == 1  # drawn once, before the table
    assert _count(data_dir, "candles") == (sim.now_ms() - since) // 3_600_000
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["backfill-progress"]))
        )
    assert artifacts and artifacts[0].type == "progress" and artifacts[0].data == 100.0
    missing = run_cli(["backfill", "--symbol", "BTC/USDT"], sim_env(sim, data_dir), prefect_api)
    assert missing.returncode == 2 and "--since" in missing.stderr
