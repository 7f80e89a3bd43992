"""Partial failure in a real flow run: one exchange down, the other lands; the run says so."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.resilience.conftest import BINANCE, KLINES
from vectorflow.errors import ExchangeUnavailable
from vectorflow.timeframes import ms_to_iso


def _artifact_rows(flow_run_id) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    (table,) = [a for a in artifacts if a.key == "ingest-candles-units"]
    return table.data if isinstance(table.data, list) else json.loads(table.data)


@pytest.fixture
def binance_down(lab, monkeypatch):
    """Binance klines answer 503 and its fetch_candles breaker is open; Bybit is fine."""
    for key, value in lab.env().items():
        monkeypatch.setenv(key, value)
    settings = lab.settings(breaker_failures=2, breaker_cooldown_seconds=100_000)
    lab.sim.fault("error", KLINES["binance"], status=503, times=None)
    with pytest.raises(ExchangeUnavailable):
        lab.ingest(BINANCE, settings)
    lab.sim.clear_requests()
    return lab


def test_run_with_an_open_breaker_completes_degraded_naming_the_skipped(prefect_api, binance_down):
    from flows.ingest import ingest_candles

    lab = binance_down
    state = ingest_candles(
        exchanges=["binance", "bybit"],
        symbols=["BTC/USDT", "ETH/USDT"],
        timeframes=["15m"],
        since=ms_to_iso(lab.since()),
        return_state=True,
    )
    assert state.is_completed()
    assert state.message.startswith("degraded: 2 of 4 units skipped: binance spot")
    assert "binance spot BTC/USDT 15m" in state.message
    rows = {(r["exchange"], r["symbol"]): r for r in state.result()}
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert rows[("binance", symbol)]["status"] == "skipped"
        assert "circuit open for fetch_candles on binance" in rows[("binance", symbol)]["error"]
        assert rows[("bybit", symbol)]["status"] == "ok"
        assert rows[("bybit", symbol)]["rows_written"] > 3000
    assert lab.klines("binance") == []  # failed fast: not one request
    published = _artifact_rows(state.state_details.flow_run_id)
    assert sorted((r["exchange"], r["symbol"], r["status"]) for r in published) == sorted(
        (e, s, r["status"]) for (e, s), r in rows.items()
    )


def test_cli_exits_1_for_a_degraded_run_and_status_shows_the_breaker(prefect_api, binance_down):
    lab = binance_down
    args = ["ingest", "--symbol", "BTC/USDT", "--timeframe", "15m", "--since"]
    done = run_cli([*args, ms_to_iso(lab.since())], lab.env(), prefect_api)
    assert done.returncode == 1, done.stderr
    assert "skipped" in done.stdout and "degraded" in done.stderr
    shown = run_cli(["status", "--format", "csv"], lab.env())
    assert shown.returncode == 4, shown.stderr  # the health check says broken: a breaker is open
    assert "breaker fetch_candles binance is open" in shown.stdout
    assert "fetch_candles,binance,open,2," in shown.stdout
    assert "closed,open" in shown.stdout  # the transition, with its reason
