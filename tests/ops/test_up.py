"""`vectorflow up` on a real Prefect server (not the test harness): deploy, trigger, land, stop."""

from __future__ import annotations

import time

import duckdb
import pytest
import requests

from tests.ops.helpers import running_stack, trigger, wait_run
from vectorflow.timeframes import ms_to_iso


@pytest.fixture
def stack(sim, tmp_path):
    with running_stack(sim, tmp_path) as (api, data_dir, _):
        yield api, data_dir


def _catalog_count(data_dir, sql: str) -> int:
    con = duckdb.connect(str(data_dir / "vectorflow.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _scheduled_run_completed(api: str, deployment: dict, timeout_s: float) -> dict:
    """Wait for a run the scheduler created (not a triggered one) to complete."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = requests.post(f"{api}/flow_runs/filter", timeout=30, json={
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}})
        runs = [r for r in (answer.json() if answer.ok else []) if r["auto_scheduled"]]
        if runs:
            return runs[0]
        time.sleep(2)
    pytest.fail(f"no scheduled run of {deployment['name']} completed in {timeout_s} s")


def test_ui_triggered_runs_land_data_and_bad_parameters_fail_fast(stack, sim):
    api, data_dir = stack
    deployments = {d["name"]: d for d in
                   requests.post(f"{api}/deployments/filter", json={}, timeout=10).json()}
    assert {"ingest-candles", "snapshot-orderbooks", "backfill", "nightly"} <= set(deployments)
    first, _ = sim.bundled_range("1h")
    good = trigger(api, deployments["ingest-candles"], {
        "exchanges": ["binance"], "symbols": ["BTC/USDT"], "timeframes": ["1h"],
        "since": ms_to_iso(first)})
    bad = trigger(api, deployments["ingest-candles"], {"exchanges": ["kraken"]})
    backfill = trigger(api, deployments["backfill"], {
        "exchanges": ["bybit"], "symbols": ["BTC/USDT:USDT"], "timeframes": ["4h"],
        "since": ms_to_iso(first)})
    run = wait_run(api, good)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    assert run["name"].startswith("ingest binance 1h 20"), run["name"]  # says what ran
    landed = _catalog_count(data_dir, "SELECT count(*) FROM candles WHERE exchange = 'binance'")
    assert landed > 250
    artifacts = requests.post(f"{api}/artifacts/filter", timeout=30, json={
        "artifacts": {"flow_run_id": {"any_": [good]}}}).json()
    summary = next(a for a in artifacts if a["key"] == "ingest-candles-run-summary")
    assert "1 of 1 units ok" in summary["data"] and "binance spot BTC/USDT 1h" in summary["data"]
    failed = wait_run(api, bad)
    assert failed["state"]["type"] == "FAILED"
    assert "kraken" in failed["state"]["message"]
    assert failed["total_run_time"] < 10  # it failed at parameter validation, not deep in a task
    backfilled = wait_run(api, backfill)
    assert backfilled["state"]["type"] == "COMPLETED", backfilled["state"]["message"]
    assert _catalog_count(
        data_dir, "SELECT count(*) FROM candles WHERE exchange = 'bybit' AND timeframe = '4h'"
    ) > 60
    # the schedules run too: the every-minute order book snapshots land against the simulator
    _scheduled_run_completed(api, deployments["snapshot-orderbooks"], timeout_s=150)
    snapshots = "SELECT count(DISTINCT snapshot_time) FROM orderbook_stats"
    assert _catalog_count(data_dir, snapshots) >= 1
