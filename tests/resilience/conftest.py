"""Fixtures of the resilience tests: a time-scaled simulator, settings files, lake comparisons."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SIM_NOW
from vectorflow.config import load_settings
from vectorflow.lake.catalog import connect, refresh_catalog
from vectorflow.pipelines.candles import ingest_series
from vectorflow.settings import Settings
from vectorflow.sim import ExchangeSimulator
from vectorflow.sim.limits import Limits
from vectorflow.units import Unit, UnitResult

#: one exchange minute lasts 0.6 s, a Binance 2-minute ban 1.2 s, a 0.5 s backoff 5 ms
SCALE = 0.01
REPO = Path(__file__).resolve().parents[2]
BINANCE = Unit("binance", "spot", "BTC/USDT", "15m")  # 4 pages of klines
BYBIT = Unit("bybit", "linear", "BTC/USDT:USDT", "15m")  # 4 bounded windows
KLINES = {"binance": "/api/v3/klines", "bybit": "/v5/market/kline"}
COLUMNS = (
    "exchange, market, symbol, timeframe, epoch_ms(open_time) AS t, open, high, low, close, "
    "volume, quote_volume, trades, taker_buy_volume"
)


def environment(sim: ExchangeSimulator, data_dir: Path, scale: float) -> dict[str, str]:
    """Environment pointing a VectorFlow process at `sim`, `data_dir` and the time scale."""
    return {
        "VECTORFLOW_DATA_DIR": str(data_dir),
        "VECTORFLOW_BINANCE_URL": sim.url,
        "VECTORFLOW_BYBIT_URL": sim.url,
        "VECTORFLOW_TIME_SCALE": str(scale),
    }


def write_settings(data_dir: Path, *, timeout: float = 2.0, flush_rows: int = 200_000, **res):
    """A settings file in `data_dir` with these `[resilience]` values."""
    lines = [f"request_timeout_seconds = {timeout}", f"flush_rows = {flush_rows}", "[resilience]"]
    lines += [f"{key} = {_toml(value)}" for key, value in res.items()]
    (data_dir / "vectorflow.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


def lake_rows(data_dir: Path) -> list[tuple]:
    """Every candle of the lake as users see it (the catalog's view), ingested_at left out."""
    settings = load_settings(data_dir)
    refresh_catalog(settings)
    con = connect(settings, read_only=True)
    try:
        return con.execute(f"SELECT {COLUMNS} FROM candles ORDER BY ALL").fetchall()
    finally:
        con.close()


def run_backfill(env: dict, since: int, until: int, units: list[str], *extra: str):
    """Start `python -m tests.resilience.backfill` (see that module); the Popen."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("VECTORFLOW_")} | env
    return subprocess.Popen(
        [sys.executable, "-m", "tests.resilience.backfill", str(since), str(until), *units, *extra],
        cwd=REPO,
        env=full,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def timed_backfill(env: dict, since: int, until: int, units: list[str]) -> float:
    """Run a backfill process to its end; the seconds it worked (start-up and exit not counted)."""
    worker = run_backfill(env, since, until, units)
    assert worker.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    first = worker.stdout.readline()  # its first report: the work is done
    worked = time.perf_counter() - started
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0 and '"status": "ok"' in first + out, err
    return worked


class Lab:
    """One test's data dir against the shared scaled simulator."""

    def __init__(self, sim: ExchangeSimulator, data_dir: Path) -> None:
        self.sim, self.data_dir = sim, data_dir

    @property
    def scale(self) -> float:
        return self.sim.limits.time_scale

    def settings(self, **values) -> Settings:
        """Write the settings file (time scale included) and load it."""
        write_settings(self.data_dir, time_scale=self.scale, **values)
        return load_settings(self.data_dir, env=self.env())

    def env(self) -> dict[str, str]:
        return environment(self.sim, self.data_dir, self.scale)

    def since(self) -> int:
        return self.sim.bundled_range("15m")[0]

    def ingest(self, unit: Unit, settings: Settings | None = None) -> UnitResult:
        """Land `unit` from the start of the bundled range to the simulator's now."""
        settings = settings or self.settings()
        return ingest_series(unit, self.since(), self.sim.now_ms(), settings, clock=self.sim.now_ms)

    def klines(self, exchange: str) -> list[dict]:
        """The simulator's log of kline requests to `exchange`."""
        return [r for r in self.sim.requests if r["path"] == KLINES[exchange]]

    def rows(self) -> list[tuple]:
        return lake_rows(self.data_dir)


@pytest.fixture(scope="package")
def rsim():
    """A simulator of the resilience tests, time scale SCALE, clock pinned to SIM_NOW."""
    with ExchangeSimulator(now=SIM_NOW, time_scale=SCALE) as server:
        yield server


@pytest.fixture
def lab(rsim, data_dir, baseline):
    """A clean slate on the shared simulator: no faults, bans or log; this test's data dir."""
    rsim.clear_faults()
    rsim.limits = Limits(time_scale=SCALE)
    rsim.clear_requests()
    yield Lab(rsim, data_dir)
    rsim.clear_faults()
    rsim.limits = Limits(time_scale=SCALE)


@pytest.fixture(scope="package")
def baseline(rsim, tmp_path_factory) -> dict:
    """A fault-free run of BINANCE and BYBIT: rows and kline requests, by exchange."""
    lab = Lab(rsim, tmp_path_factory.mktemp("baseline"))
    rsim.clear_requests()
    for unit in (BINANCE, BYBIT):
        lab.ingest(unit)
    rows = lab.rows()
    out = {
        "rows": {e: [r for r in rows if r[0] == e] for e in KLINES},
        "requests": {e: len(lab.klines(e)) for e in KLINES},
    }
    assert len(out["rows"]["binance"]) > 3000 and len(out["rows"]["bybit"]) > 3000
    assert min(out["requests"].values()) >= 4  # the faults hit the 2nd of several pages
    return out
