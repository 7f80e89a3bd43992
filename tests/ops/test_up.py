"""`vectorflow up` on a real Prefect server (not the test harness): deploy, trigger, land, stop."""

from __future__ import annotations

import duckdb
import pytest

from tests.ops.helpers import deployments, running_stack, trigger, wait_run
from vectorflow.timeframes import ms_to_iso


@pytest.fixture
def stack(sim, tmp_path):
    with running_stack(sim, tmp_path) as (api, data_dir, _):
        yield api, data_dir


def test_ui_triggered_runs_land_data_and_bad_parameters_fail_fast(stack, sim):
    api, data_dir = stack
    found = deployments(api)
    assert "ingest-candles" in found
    first, _ = sim.bundled_range("1h")
    good = trigger(api, found["ingest-candles"], {
        "exchanges": ["binance"], "symbols": ["BTC/USDT"], "timeframes": ["1h"],
        "since": ms_to_iso(first)})  # fmt: skip
    bad = trigger(api, found["ingest-candles"], {"exchanges": ["kraken"]})
    run = wait_run(api, good)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    con = duckdb.connect(str(data_dir / "vectorflow.duckdb"), read_only=True)
    landed = con.execute("SELECT count(*) FROM candles WHERE exchange = 'binance'").fetchone()[0]
    con.close()
    assert landed > 250
    failed = wait_run(api, bad)
    assert failed["state"]["type"] == "FAILED"
    assert "kraken" in failed["state"]["message"]
    assert failed["total_run_time"] < 10  # it failed at parameter validation, not deep in a task
