"""`vectorflow up` on a real Prefect server (not the test harness): deploy, trigger, land, stop."""

from __future__ import annotations

import socket
import time

import duckdb
import pytest
import requests

from tests.conftest import run_cli, sim_env
from vectorflow.timeframes import ms_to_iso

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _trigger(api: str, deployment: dict, parameters: dict) -> str:
    """What the UI's Run button does: create a flow run of the deployment with parameters.

    The SQLite-backed server answers 503 while its scheduler holds the database (it is filling
    every deployment's schedule just after `up`); like a person clicking again, retry a few times.
    """
    for _ in range(20):
        created = requests.post(f"{api}/deployments/{deployment['id']}/create_flow_run",
                                json={"parameters": parameters}, timeout=30)
        if created.status_code != 503:
            break
        time.sleep(1)
    created.raise_for_status()
    return created.json()["id"]


def _wait(api: str, flow_run_id: str, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = requests.get(f"{api}/flow_runs/{flow_run_id}", timeout=30)
        run = answer.json() if answer.ok else {}  # a 503 while the database is busy: ask again
        if run.get("state") and run["state"]["type"] in FINAL:
            return run
        time.sleep(0.5)
    pytest.fail(f"flow run {flow_run_id} did not finish in {timeout_s} s")


@pytest.fixture
def stack(sim, tmp_path):
    port = _free_port()
    data_dir = tmp_path / "data"
    env = sim_env(sim, data_dir) | {"PREFECT_HOME": str(tmp_path / "prefect-home"),
                                    "PREFECT_WORKER_QUERY_SECONDS": "1"}
    started = run_cli(["up", "--detach", "--port", str(port)], env, timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"http://127.0.0.1:{port}" in started.stdout
    api = f"http://127.0.0.1:{port}/api"
    try:
        yield api, data_dir
    finally:
        stopped = run_cli(["down"], env)
        assert stopped.returncode == 0 and "stopped 2" in stopped.stdout
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{api}/health", timeout=2)


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
    good = _trigger(api, deployments["ingest-candles"], {
        "exchanges": ["binance"], "symbols": ["BTC/USDT"], "timeframes": ["1h"],
        "since": ms_to_iso(first)})
    bad = _trigger(api, deployments["ingest-candles"], {"exchanges": ["kraken"]})
    backfill = _trigger(api, deployments["backfill"], {
        "exchanges": ["bybit"], "symbols": ["BTC/USDT:USDT"], "timeframes": ["4h"],
        "since": ms_to_iso(first)})
    run = _wait(api, good)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    assert run["name"].startswith("ingest binance 1h 20"), run["name"]  # says what ran
    landed = _catalog_count(data_dir, "SELECT count(*) FROM candles WHERE exchange = 'binance'")
    assert landed > 250
    artifacts = requests.post(f"{api}/artifacts/filter", timeout=30, json={
        "artifacts": {"flow_run_id": {"any_": [good]}}}).json()
    summary = next(a for a in artifacts if a["key"] == "ingest-candles-run-summary")
    assert "1 of 1 units ok" in summary["data"] and "binance spot BTC/USDT 1h" in summary["data"]
    failed = _wait(api, bad)
    assert failed["state"]["type"] == "FAILED"
    assert "kraken" in failed["state"]["message"]
    assert failed["total_run_time"] < 10  # it failed at parameter validation, not deep in a task
    backfilled = _wait(api, backfill)
    assert backfilled["state"]["type"] == "COMPLETED", backfilled["state"]["message"]
    assert _catalog_count(
        data_dir, "SELECT count(*) FROM candles WHERE exchange = 'bybit' AND timeframe = '4h'"
    ) > 60
    # the schedules run too: the every-minute order book snapshots land against the simulator
    _scheduled_run_completed(api, deployments["snapshot-orderbooks"], timeout_s=150)
    snapshots = "SELECT count(DISTINCT snapshot_time) FROM orderbook_stats"
    assert _catalog_count(data_dir, snapshots) >= 1
