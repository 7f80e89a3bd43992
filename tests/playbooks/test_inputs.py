"""Inputs read from a real lake: candles, stored or computed signals, staleness, stable hashes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.lake.helpers import publish_as_is
from tests.playbooks.conftest import AS_OF, HOUR, UNIT, lake_of, make_candles, store_candles
from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import DATASETS
from vectorflow.playbooks.history import load_inputs
from vectorflow.playbooks.inputs import ATR_WINDOW, wilder_atr
from vectorflow.playbooks.prompt import build_payload, inputs_hash, payload_text
from vectorflow.playbooks.reads import read_candles

CANDLES = make_candles(600)


@pytest.fixture
def lake(data_dir):
    store_candles(lake_of(data_dir), UNIT, CANDLES)
    return lake_of(data_dir)


def test_candles_are_read_once_per_time_the_newest_write_winning(lake):
    changed = CANDLES.tail(3).assign(close=1.0)
    store_candles(lake, UNIT, changed, ingested_at=AS_OF + 1)  # rewritten later, same times
    frame = read_candles(lake, UNIT, AS_OF - 10 * HOUR, AS_OF)
    assert list(frame["open_time"]) == [AS_OF - (10 - i) * HOUR for i in range(10)]
    assert list(frame["close"]) == [*CANDLES["close"].iloc[-10:-3], 1.0, 1.0, 1.0]
    assert read_candles(lake, UNIT, AS_OF, AS_OF + HOUR).empty


def test_stored_signals_are_used_when_the_signals_dataset_has_the_bar(lake):
    if "signals" not in DATASETS:
        pytest.skip("no signals dataset in this tree")
    row = {
        "exchange": UNIT.exchange,
        "market": UNIT.market,
        "symbol": UNIT.symbol,
        "timeframe": UNIT.timeframe,
        "as_of": AS_OF,
        "regime": "trend_down|low_vol",
        "tpo_poc": 60_000.0,
        "tpo_vah": 60_100.0,
        "tpo_val": 59_900.0,
    }
    signals = DATASETS["signals"]  # a range dataset: a row is published in a snapshot
    table = pa.Table.from_pylist([row | {"ingested_at": AS_OF}], schema=signals.schema)
    folder = partition_dir(lake.root, signals, {**row, "symbol_id": "BTCUSDT"})
    publish_as_is(lake, signals, folder, table, AS_OF, AS_OF)
    given = load_inputs(lake, UNIT, AS_OF)
    assert given.stale is None
    assert given.signals["regime"] == "trend_down|low_vol"
    assert given.levels["tpo_poc"] == 60_000.0


def test_without_stored_signals_they_are_computed_from_the_candles(lake):
    given = load_inputs(lake, UNIT, AS_OF)
    assert given.stale is None
    assert str(given.signals["regime"]).split("|")[0] in ("trend_up", "trend_down", "range")
    window = CANDLES.tail(ATR_WINDOW)  # Wilder's ATR over the last 250 bars before as_of
    assert given.atr == wilder_atr(*(window[k].to_numpy() for k in ("high", "low", "close")))
    assert given.last_close == CANDLES["close"].iloc[-1]


def test_latest_candle_judged_against_the_clock(lake):
    fresh = load_inputs(lake, UNIT, now_ms=AS_OF + 30 * 60_000)
    assert fresh.as_of_ms == AS_OF and fresh.stale is None
    late = load_inputs(lake, UNIT, now_ms=AS_OF + 3 * HOUR)
    assert late.as_of_ms == AS_OF and "more than two timeframes" in late.stale
    nothing = load_inputs(lake_of(lake.root.parent / "elsewhere"), UNIT, now_ms=AS_OF)
    assert nothing.stale.startswith("no candles stored")


def test_the_same_as_of_always_hashes_the_same(lake):
    hashes = {
        inputs_hash("grok-4.3", payload_text(build_payload(load_inputs(lake, UNIT, now_ms=now))))
        for now in (AS_OF + 60_000, AS_OF + 40 * 60_000)
    }
    assert len(hashes) == 1
    explicit = load_inputs(lake, UNIT, AS_OF)
    assert inputs_hash("grok-4.3", payload_text(build_payload(explicit))) in hashes
