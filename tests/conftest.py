"""Shared fixtures: one exchange simulator and one Prefect API per test session, temp data dirs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

from vectorflow.numba_cache import use_numba_cache  # noqa: E402

# numba's compiled vectorbt kernels live in one on-disk cache (NUMBA_CACHE_DIR, default
# ~/.cache/vectorflow/numba) for every session and for the CLI subprocesses, which inherit it:
# reruns on the same machine skip the compile
use_numba_cache()

from vectorflow.config import load_settings  # noqa: E402
from vectorflow.sim import ExchangeSimulator  # noqa: E402

#: The simulator's pinned clock: a little after the end of the bundled real candles, mid-candle.
SIM_NOW = "2026-06-01T12:02:30Z"


@pytest.fixture(scope="session")
def sim():
    """The exchange simulator on a free loopback port, clock pinned to SIM_NOW."""
    with ExchangeSimulator(now=SIM_NOW) as server:
        yield server


@pytest.fixture
def fresh_sim():
    """A simulator of this test's own, for tests that move its clock or read its request log."""
    with ExchangeSimulator(now=SIM_NOW) as server:
        yield server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data dir for one test."""
    path = tmp_path / "data"
    path.mkdir()
    return path


def sim_env(sim: ExchangeSimulator, data_dir: Path) -> dict[str, str]:
    """Environment pointing VectorFlow at the simulator and at `data_dir`."""
    return {
        "VECTORFLOW_DATA_DIR": str(data_dir),
        "VECTORFLOW_BINANCE_URL": sim.url,
        "VECTORFLOW_BYBIT_URL": sim.url,
    }


def sim_settings(sim: ExchangeSimulator, data_dir: Path):
    """Settings for library calls against the simulator."""
    return load_settings(data_dir, env=sim_env(sim, data_dir))


@pytest.fixture(scope="session")
def prefect_api():
    """One real Prefect API server (the test harness) for the whole session; yields its URL."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    # no heartbeat thread: saves about 1 s per flow run (as Prefect's own tests do)
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with prefect_test_harness(server_startup_timeout=90):
            yield PREFECT_API_URL.value()


def query_catalog(data_dir: Path, sql: str, *, frame: bool = False):
    """Rows of `sql` (or a DataFrame) on the data dir's catalog, opened read-only as users do."""
    from vectorflow.lake.catalog import connect, refresh_catalog

    settings = load_settings(data_dir)
    refresh_catalog(settings)
    con = connect(settings, read_only=True)
    try:
        result = con.execute(sql)
        return result.df() if frame else result.fetchall()
    finally:
        con.close()


def run_cli(
    args: list[str],
    env: dict[str, str],
    api_url: str | None = None,
    cwd: Path | None = None,
    timeout: float = 240,
    wrapper: list[str] | tuple[str, ...] = (),
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.CompletedProcess:
    """Run `vectorflow ARGS` in a subprocess, pointed at the session's Prefect API if given
    (`wrapper`: a command the CLI runs under, e.g. one that mounts the data dir read-only)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORFLOW_")}
    full_env.update(env)
    if api_url:
        full_env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "vectorflow.cli", *args],
        env=full_env,
        cwd=cwd,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def webhook():
    """A `Webhook` serving on its own thread for one test."""
    from tests.webhook import Webhook

    server = Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
