"""Fixtures for playbooks: the fake LLM on loopback, hand-made candles in a real lake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.lake.helpers import publish_as_is
from vectorflow.config import load_settings
from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import CANDLES
from vectorflow.lake.storage import LocalStorage, Storage
from vectorflow.playbooks.reads import symbol_id
from vectorflow.resilience.guard import Guard
from vectorflow.resilience.retry import RetryPolicy
from vectorflow.settings.playbooks import PlaybookSettings
from vectorflow.settings.resilience import ResilienceSettings
from vectorflow.sim.llm import FakeLLM
from vectorflow.units import Unit

HOUR = 3_600_000
#: as_of of the hand-made series: a candle close time (2026-05-28T20:00:00Z)
AS_OF = 1_780_000_000_000 // HOUR * HOUR
CANARY = "xai-CANARY-7f3d9c2b1a"
UNIT = Unit("binance", "spot", "BTC/USDT", "1h")
FAST_RETRY = RetryPolicy(attempts=3, base_seconds=0.01, max_seconds=0.05)


@pytest.fixture(scope="session")
def market(tmp_path_factory):
    """(data dir, the same truncated at AS_OF_PAST) of a lake landed from the simulator.

    Shared by the session: a test that writes copies it (market_lake.copy_data_dir).
    """
    from tests.conftest import SIM_NOW
    from tests.playbooks.market_lake import AS_OF_PAST, build_market_lake, truncate_lake
    from vectorflow.sim import ExchangeSimulator

    root = tmp_path_factory.mktemp("market")
    with ExchangeSimulator(now=SIM_NOW) as sim:
        build_market_lake(sim, root / "full")
    truncate_lake(root / "full" / "lake", root / "past" / "lake", AS_OF_PAST)
    return root / "full", root / "past"
def guard_of(data_dir: Path, **resilience) -> Guard:
    """The resilience guard of `data_dir` (its own state.db), with these `[resilience]` values."""
    settings = load_settings(data_dir, env={})
    return Guard(settings.with_overrides(resilience=ResilienceSettings(**resilience)))


@pytest.fixture
def llm():
    """A fake LLM of this test's own (its script and request log start empty)."""
    with FakeLLM() as server:
        yield server


def llm_config(llm: FakeLLM, **changes) -> PlaybookSettings:
    """Playbook settings pointed at the fake LLM, with short timeouts."""
    values = {"base_url": llm.url, "read_timeout_seconds": 2.0, "connect_timeout_seconds": 1.0}
    return PlaybookSettings(**(values | changes))


def make_candles(
    n: int = 300, end_ms: int = AS_OF, step: int = HOUR, seed: int = 3
) -> pd.DataFrame:
    """`n` candles closing at end_ms: a seeded random walk around 60,000 (open_time in ms)."""
    rng = np.random.default_rng(seed)
    close = 60_000 + np.cumsum(rng.normal(0, 60, n))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 40, n)) + 20
    return pd.DataFrame(
        {
            "open_time": end_ms - step * np.arange(n, 0, -1),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(50, 150, n),
            "quote_volume": close * 100,
        }
    )


def store_candles(
    lake: Storage, unit: Unit, candles: pd.DataFrame, ingested_at: int = AS_OF
) -> None:
    """Land hand-made candles in the lake (pinned schema, one file in place of those it
    overlaps: written later, they win)."""
    n = len(candles)
    times = candles["open_time"].to_numpy(dtype=np.int64)
    columns = {
        "exchange": [unit.exchange] * n,
        "market": [unit.market] * n,
        "symbol": [unit.symbol] * n,
        "timeframe": [unit.timeframe] * n,
        "open_time": pa.array(times, pa.int64()).cast(pa.timestamp("ms")),
        **{k: candles[k].to_numpy(float) for k in ("open", "high", "low", "close", "volume")},
        "quote_volume": candles["quote_volume"].to_numpy(float),
        "trades": pa.nulls(n, pa.int64()),
        "taker_buy_volume": pa.nulls(n, pa.float64()),
        "ingested_at": pa.array(np.full(n, ingested_at), pa.int64()).cast(pa.timestamp("ms")),
    }
    folder = partition_dir(
        lake.root,
        CANDLES,
        {
            "exchange": unit.exchange,
            "market": unit.market,
            "symbol_id": symbol_id(unit.symbol),
            "timeframe": unit.timeframe,
        },
    )
    table = pa.Table.from_pydict(columns, schema=CANDLES.schema)
    publish_as_is(lake, CANDLES, folder, table, int(times[0]), int(times[-1]))


def lake_of(data_dir: Path) -> Storage:
    """The lake of a test's data dir (on disk)."""
    return LocalStorage(data_dir / "lake", data_dir)
