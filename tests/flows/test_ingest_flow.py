"""The ingest flow on a real Prefect API (the test harness) against the simulator."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, sim_env
from vectorflow.config import load_settings
from vectorflow.lake.catalog import connect
from vectorflow.timeframes import ms_to_iso
from vectorflow.units import UnitsFailed


@pytest.fixture
def sim_environment(sim, data_dir, monkeypatch):
    for key, value in sim_env(sim, data_dir).items():
        monkeypatch.setenv(key, value)
    return data_dir


def _series_counts(data_dir) -> dict[tuple, int]:
    con = connect(load_settings(data_dir), read_only=True)
    try:
        rows = con.execute(
            "SELECT exchange, market, symbol, timeframe, count(*) FROM candles GROUP BY ALL"
        ).fetchall()
    finally:
        con.close()
    return {tuple(r[:4]): r[4] for r in rows}


def _artifact_rows(flow_run_id) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    (table,) = [a for a in artifacts if a.key == "ingest-candles-units"]
    data = table.data
    return data if isinstance(data, list) else __import__("json").loads(data)


def test_one_failing_unit_never_stops_the_others(prefect_api, sim, sim_environment):
    from flows.ingest import ingest_candles

    first, _ = sim.bundled_range("1h")
    state = ingest_candles(
        exchanges=["binance", "bybit"],
        symbols=["BNB/USDT", "BTC/USDT"],
        timeframes=["1h"],
        since=ms_to_iso(first),
        return_state=True,
    )
    assert state.is_failed()
    assert "1 of 4 units failed: bybit spot BNB/USDT 1h" in state.message
    # Regression: the rows rode on Failed(data=rows), which Prefect cannot resolve into an
    # exception ("Unexpected result for failed state"); now the failure is an exception holding them
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, UnitsFailed) and str(failure) == state.message
    rows = {(r["exchange"], r["symbol"]): r for r in failure.rows}
    assert rows[("bybit", "BNB/USDT")]["status"] == "failed"
    assert "BNB/USDT" in rows[("bybit", "BNB/USDT")]["error"]
    landed = _series_counts(sim_environment)
    for exchange, symbol in [
        ("binance", "BNB/USDT"),
        ("binance", "BTC/USDT"),
        ("bybit", "BTC/USDT"),
    ]:
        assert rows[(exchange, symbol)]["status"] == "ok"
        assert (
            landed[(exchange, "spot", symbol, "1h")] == rows[(exchange, symbol)]["rows_written"] > 0
        )
    published = _artifact_rows(state.state_details.flow_run_id)
    assert sorted((r["exchange"], r["symbol"], r["status"]) for r in published) == sorted(
        (e, s, r["status"]) for (e, s), r in rows.items()
    )


def test_invalid_request_fails_the_flow_at_once_without_requests(prefect_api, sim, sim_environment):
    from flows.ingest import ingest_candles

    sim.clear_requests()
    state = ingest_candles(exchanges=["binance", "kraken"], since="2024-01-01", return_state=True)
    assert state.is_failed()
    assert "kraken" in str(state.result(raise_on_failure=False))
    assert sim.requests == []


def test_cli_ingest_exit_codes_and_valid_units_landing(prefect_api, sim, data_dir):
    first, _ = sim.bundled_range("1h")
    env = sim_env(sim, data_dir)
    args = ["ingest", "--timeframe", "1h", "--since", ms_to_iso(first)]
    mixed = run_cli(
        [*args, "--symbol", "BNB/USDT:USDT", "--symbol", "BTC/USDT:USDT"], env, prefect_api
    )
    assert mixed.returncode == 1, mixed.stderr
    assert "bybit" in mixed.stdout and "failed" in mixed.stdout
    landed = _series_counts(data_dir)
    assert landed[("bybit", "linear", "BTC/USDT:USDT", "1h")] > 0
    assert landed[("binance", "linear", "BNB/USDT:USDT", "1h")] > 0
    assert ("bybit", "linear", "BNB/USDT:USDT", "1h") not in landed

    again = run_cli([*args, "--symbol", "BTC/USDT:USDT"], env, prefect_api)
    assert again.returncode == 0, again.stderr
    assert _series_counts(data_dir) == landed  # nothing new, nothing duplicated
