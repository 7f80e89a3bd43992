"""Whatever order candles, open interest and funding land in, the stored signals end as one run
over everything would store them (a property test over landing orders and runs between)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import sim_settings
from tests.pipelines.lineage_helpers import same_rows, stored
from vectorflow.config import load_settings
from vectorflow.lake import store
from vectorflow.lake.catalog import read_view
from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import CANDLES, FUNDING_RATES, OPEN_INTEREST
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.market_data import ingest_market_unit
from vectorflow.pipelines.signals import update_signals
from vectorflow.timeframes import now_ms
from vectorflow.units import Unit

UNIT = Unit("binance", "linear", "BTC/USDT:USDT", "30m")  # its own candles serve for TPO
DAY = 86_400_000
FOLDERS = {  # partition values of each input
    "candles": (CANDLES, {"exchange": "binance", "market": "linear", "symbol_id": "BTCUSDT",
                          "timeframe": "30m"}),
    "open_interest": (OPEN_INTEREST, {"exchange": "binance", "symbol_id": "BTCUSDT",
                                      "period": "1h"}),
    "funding_rates": (FUNDING_RATES, {"exchange": "binance", "symbol_id": "BTCUSDT"}),
}  # fmt: skip
PIECES = {"candles": 4, "open_interest": 3, "funding_rates": 2}  # chunks each lands in
CHUNKS = [(name, i) for name, n in PIECES.items() for i in range(n)]


def land(settings, name: str, table: pa.Table) -> None:
    """Land rows as a run would: stamped with the time they land."""
    dataset, values = FOLDERS[name]
    stamp = pa.array([now_ms()] * table.num_rows, pa.int64()).cast(pa.timestamp("ms"))
    table = table.set_column(table.schema.get_field_index("ingested_at"), "ingested_at", stamp)
    folder = partition_dir(settings.storage.root, dataset, values)
    store.append(settings.storage, dataset, folder, table, **settings.lake.append_options())


@pytest.fixture(scope="module")
def inputs(sim, tmp_path_factory):
    """The inputs, each cut in time-ordered chunks, and the signals one run over all stores."""
    source = sim_settings(sim, tmp_path_factory.mktemp("source"))
    since = sim.now_ms() - 12 * DAY
    ingest_series(UNIT, since, sim.now_ms(), source, clock=sim.now_ms)
    for dataset, period in (("open_interest", "1h"), ("funding_rates", None)):
        unit = Unit(UNIT.exchange, UNIT.market, UNIT.symbol, period, dataset)
        ingest_market_unit(unit, since - 3 * DAY, sim.now_ms(), source)
    chunks = {}
    for name, (dataset, _) in FOLDERS.items():
        frame = read_view(source.storage, name).sort_values(dataset.order_by)
        table = pa.Table.from_pandas(frame, schema=dataset.schema, preserve_index=False)
        step = -(-table.num_rows // PIECES[name])
        for i in range(PIECES[name]):
            chunks[(name, i)] = table.slice(i * step, step)
    reference = load_settings(tmp_path_factory.mktemp("reference"), env={})
    for name, i in CHUNKS:
        land(reference, name, chunks[(name, i)])
    update_signals(UNIT, reference)
    return chunks, stored(reference, UNIT), stored(reference, UNIT, "trap_events")


@hypothesis_settings(max_examples=8, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(order=st.permutations(CHUNKS), runs=st.lists(st.booleans(), min_size=len(CHUNKS),
                                                    max_size=len(CHUNKS)))  # fmt: skip
def test_any_landing_order_ends_as_one_run_over_everything(inputs, order, runs):
    chunks, rows, events = inputs
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(Path(folder), env={})
        for chunk, run in zip(order, runs, strict=True):
            land(settings, chunk[0], chunks[chunk])
            if run:  # a run in between: late derivatives, backfills, gaps filled later
                update_signals(UNIT, settings)
        update_signals(UNIT, settings)
        same_rows(stored(settings, UNIT), rows, lineage=False)
        same_rows(stored(settings, UNIT, "trap_events"), events, lineage=False)
        assert update_signals(UNIT, settings).rows_written == 0
