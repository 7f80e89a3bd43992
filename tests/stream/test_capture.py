"""Stream capture against the simulator's WebSocket streams: real ccxt.pro, real sockets."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.stream.conftest import (
    VENUES,
    assert_matches_true_book,
    stored_snapshots,
    stream_settings,
)
from vectorflow import interrupt
from vectorflow.errors import Interrupted
from vectorflow.pipelines.orderbook_stream import capture_order_book

DEPTH = 20


def _capture(ws, data_dir, exchange, market, symbol, seconds=3.0, every="250ms"):
    settings = stream_settings(ws, data_dir)
    started = time.monotonic()
    report = capture_order_book(
        exchange, market, symbol, settings, seconds=seconds, depth=DEPTH, every=every
    )
    return report, time.monotonic() - started


@pytest.mark.parametrize(("exchange", "market", "symbol"), VENUES)
def test_captured_book_equals_the_true_book(streams, data_dir, exchange, market, symbol):
    report, _ = _capture(streams, data_dir, exchange, market, symbol, seconds=2.5)
    snaps = stored_snapshots(data_dir)
    assert report.resyncs == 0 and report.reconnects == 0
    assert len(snaps) >= 3 and report.snapshots_written == len(snaps)
    assert report.rows_written == len(snaps) * 2 * DEPTH
    assert report.updates >= 10  # about one per 100 ms tick
    assert {s["source"] for s in snaps.values()} == {"stream"}
    assert {s["time_source"] for s in snaps.values()} == {"exchange"}
    assert_matches_true_book(streams, exchange, market, snaps, DEPTH)
    # the snapshot time is the exchange time of the last update applied
    for update_id, snap in snaps.items():
        version = streams.books[(exchange, market, "BTCUSDT")].version(update_id=update_id)
        assert snap["time"] == version.time_ms


@pytest.mark.parametrize(
    ("kind", "exchange", "market", "symbol"),
    [
        ("gap", "binance", "linear", "BTC/USDT:USDT"),
        ("gap", "binance", "spot", "BTC/USDT"),
        ("gap", "bybit", "linear", "BTC/USDT:USDT"),
        ("drop", "bybit", "spot", "BTC/USDT"),
        ("swap", "binance", "linear", "BTC/USDT:USDT"),
    ],
)
def test_a_sequence_break_triggers_one_resync(streams, data_dir, kind, exchange, market, symbol):
    fault = streams.fault(kind, exchange=exchange, market=market, after=8)
    report, _ = _capture(streams, data_dir, exchange, market, symbol, seconds=3.0)
    assert fault.fired == 1
    assert report.resyncs == 1 and report.reconnects == 0
    snaps = stored_snapshots(data_dir)
    after = [u for u in snaps if u > fault.marks[0]]
    assert len(after) >= 2, f"only {len(after)} snapshots after the resync"
    assert_matches_true_book(streams, exchange, market, snaps, DEPTH)
    assert streams.connections_opened[exchange] == 1  # resynced on the same connection


@pytest.mark.parametrize(
    ("exchange", "market", "symbol"), [VENUES[1], VENUES[3]], ids=["binance", "bybit"]
)
def test_a_disconnect_reconnects_and_the_capture_completes(
    streams, data_dir, exchange, market, symbol
):
    fault = streams.fault("disconnect", exchange=exchange, after=8)
    report, wall = _capture(streams, data_dir, exchange, market, symbol, seconds=3.0)
    assert fault.fired == 1 and streams.connections_opened[exchange] == 2
    assert report.reconnects == 1 and report.resyncs == 0
    snaps = stored_snapshots(data_dir)
    assert len([u for u in snaps if u > fault.marks[0]]) >= 2
    assert_matches_true_book(streams, exchange, market, snaps, DEPTH)
    assert 3.0 <= wall <= 6.0


def test_the_capture_stops_at_its_deadline(streams, data_dir):
    report, wall = _capture(streams, data_dir, "bybit", "linear", "BTC/USDT:USDT", seconds=2.0)
    assert 2.0 <= wall <= 5.0  # the window, plus loading markets and the last write
    assert report.seconds == pytest.approx(wall, abs=0.5)
    last_update = max(v.time_ms for v in streams.books[("bybit", "linear", "BTCUSDT")].versions)
    assert streams.now_ms() - last_update < 1000  # the book kept moving: the capture just stopped


def test_a_stop_ends_a_capture_within_a_second_and_what_was_captured_lands(streams, data_dir):
    failed: list[BaseException] = []

    def capture() -> None:
        try:
            _capture(streams, data_dir, "bybit", "linear", "BTC/USDT:USDT", seconds=60)
        except Interrupted as exc:
            failed.append(exc)

    worker = threading.Thread(target=capture)
    try:
        worker.start()
        time.sleep(2.5)  # connected, a few snapshots taken
        stopped = time.monotonic()
        interrupt.request_stop(signal.SIGTERM)
        worker.join(10)
        assert time.monotonic() - stopped < 2.0 and not worker.is_alive()
    finally:
        interrupt.reset()
    assert len(failed) == 1 and "capture" in str(failed[0])
    snaps = stored_snapshots(data_dir)
    assert snaps  # the snapshots taken before the stop landed, each whole
    assert_matches_true_book(streams, "bybit", "linear", snaps, DEPTH)
