"""`vectorflow status` as a health check: its exit code for fresh, stale, missing, broken."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import SIM_NOW, sim_settings
from vectorflow.cli import INVALID, main
from vectorflow.pipelines.candles import ingest_series
from vectorflow.resilience.guard import guard_for
from vectorflow.timeframes import ms_to_iso, parse_time
from vectorflow.units import Unit

SERIES = "[series]\nexchanges = ['binance']\nsymbols = ['BTC/USDT']\ntimeframes = ['1h']\n"
DAY = 86_400_000


@pytest.fixture
def lake(fresh_sim, data_dir, monkeypatch):
    """Two days of binance spot BTC/USDT 1h landed up to the simulator's now; configured so."""
    (data_dir / "vectorflow.toml").write_text(SERIES)
    settings = sim_settings(fresh_sim, data_dir)
    now = fresh_sim.now_ms()
    unit = Unit("binance", "spot", "BTC/USDT", "1h")
    ingest_series(unit, now - 2 * DAY, now, settings, clock=fresh_sim.now_ms)
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(data_dir))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return settings


def test_fresh_lake_is_healthy(lake, capsys):
    assert main(["status", "--now", SIM_NOW]) == 0
    out = capsys.readouterr().out
    assert "healthy" in out and "fresh" in out
    assert "candles" in out and "no Prefect API configured" in out


def test_a_series_behind_by_more_than_the_grace_is_stale(lake, capsys):
    later = ms_to_iso(parse_time(SIM_NOW) + 2 * 3_600_000)  # two hours on: two closed candles
    assert main(["status", "--now", later, "--grace-minutes", "30"]) == 3
    out = capsys.readouterr().out
    assert "candles binance spot BTC/USDT 1h is stale" in out
    # within the grace it is not
    assert main(["status", "--now", later, "--grace-minutes", "90"]) == 0


def test_a_configured_series_never_stored_is_missing(lake, data_dir, capsys):
    (data_dir / "vectorflow.toml").write_text(SERIES.replace("['1h']", "['1h', '4h']"))
    assert main(["status", "--now", SIM_NOW]) == 3
    assert "candles binance spot BTC/USDT 4h is missing" in capsys.readouterr().out


def test_an_open_breaker_is_broken(lake, capsys):
    guard = guard_for(lake)
    for _ in range(lake.resilience.breaker_failures):
        guard.breakers.failure("candles", "binance", "ExchangeUnavailable: 503")
    assert main(["status", "--now", SIM_NOW]) == 4
    assert "breaker candles binance is open" in capsys.readouterr().out


def test_a_prefect_api_that_does_not_answer_is_broken(lake, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    assert main(["status", "--now", SIM_NOW]) == 4
    assert "does not answer" in capsys.readouterr().out


def test_bad_options_are_invalid_input(lake, capsys):
    assert main(["status", "--now", "yesterday-ish"]) == INVALID
    assert "yesterday-ish" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # argparse's one line (tests/cli/test_bad_input)
        main(["status", "--grace-minutes", "-5"])
    assert refused.value.code == INVALID
    assert "'-5' must be at least 0" in capsys.readouterr().err
