"""The market-data flow's stream mode on a real Prefect API (the test harness)."""

from __future__ import annotations

from tests.stream.conftest import stored_snapshots, stream_env


def test_flow_stream_mode_captures_the_order_books(prefect_api, streams, data_dir, monkeypatch):
    from flows.market_data import ingest_market_data

    for key, value in stream_env(streams, data_dir).items():
        monkeypatch.setenv(key, value)
    state = ingest_market_data(
        exchanges=["bybit"],
        markets=["linear"],
        symbols=["BTC/USDT:USDT"],
        datasets=["orderbook_levels"],
        levels=10,
        mode="stream",
        stream_seconds=2.0,
        stream_every="500ms",
        return_state=True,
    )
    assert state.is_completed(), state.message
    (row,) = state.result()
    assert row["status"] == "ok" and row["dataset"] == "orderbook_levels"
    assert row["snapshots_written"] >= 2 and row["updates"] > 0
    snaps = stored_snapshots(data_dir)
    assert len(snaps) == row["snapshots_written"]
    assert {s["source"] for s in snaps.values()} == {"stream"}
    assert streams.connections_opened["bybit"] == 1
