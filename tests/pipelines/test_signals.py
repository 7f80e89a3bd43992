"""Signals computed from the lake and stored incrementally, one row per series and closed bar."""

from __future__ import annotations

import pandas as pd

from tests.conftest import sim_settings
from vectorflow.config import load_settings
from vectorflow.lake.catalog import connect, read_view, refresh_catalog
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.signals import update_signals
from vectorflow.signals import signals_at
from vectorflow.timeframes import timeframe_ms
from vectorflow.units import Unit

HOURLY = Unit("binance", "linear", "BTC/USDT:USDT", "1h")
FIVE = Unit("binance", "linear", "BTC/USDT:USDT", "5m")
HOUR = timeframe_ms("1h")


def test_signals_are_added_bar_by_bar_and_equal_a_direct_computation(fresh_sim, data_dir):
    settings = sim_settings(fresh_sim, data_dir)
    first, _ = fresh_sim.bundled_range("5m")
    for unit in (HOURLY, FIVE):
        ingest_series(unit, first, fresh_sim.now_ms(), settings, clock=fresh_sim.now_ms)
    report = update_signals(HOURLY, settings)
    candles = read_view(
        settings.storage,
        "candles",
        {"exchange": "binance", "market": "linear", "symbol": "BTC/USDT:USDT", "timeframe": "1h"},
    )
    assert report.rows_written == len(candles) > 250
    assert update_signals(HOURLY, settings).rows_written == 0  # nothing closed since

    fresh_sim.set_now(fresh_sim.now_ms() + 3 * HOUR)
    for unit in (HOURLY, FIVE):
        ingest_series(unit, None, fresh_sim.now_ms(), settings, clock=fresh_sim.now_ms)
    assert update_signals(HOURLY, settings).rows_written == 3

    settings = load_settings(data_dir)
    refresh_catalog(settings)
    con = connect(settings, read_only=True)
    stored = con.execute("SELECT * FROM signals ORDER BY as_of").df()
    con.close()
    assert stored["as_of"].is_unique and len(stored) == len(candles) + 3
    # an independent path: the pure function on the lake's candles, at the last stored bar
    every = read_view(
        settings.storage,
        "candles",
        {"exchange": "binance", "market": "linear", "symbol": "BTC/USDT:USDT"},
    )
    hourly = every[every.timeframe == "1h"].sort_values("open_time")
    five = every[every.timeframe == "5m"].sort_values("open_time")
    last = stored.iloc[-1]
    direct = signals_at(
        hourly, as_of=last["as_of"], timeframe="1h", tpo_candles=five, tpo_timeframe="5m"
    )
    for column in ("tpo_poc", "tpo_vah", "tpo_val", "adx", "natr", "regime", "last_trap_type"):
        expected, got = direct[column], last[column]
        assert (pd.isna(expected) and pd.isna(got)) or expected == got, column
    assert last["regime"] != "insufficient_data"


def test_signals_command_prints_levels_regime_and_traps(sim, data_dir, monkeypatch, capsys):
    from tests.conftest import sim_env
    from vectorflow.cli import INVALID, OK, main

    for key, value in sim_env(sim, data_dir).items():
        monkeypatch.setenv(key, value)
    first, _ = sim.bundled_range("5m")
    ingest_series(Unit("bybit", "spot", "BTC/USDT", "1h"), first, sim.now_ms(),
                  sim_settings(sim, data_dir), clock=sim.now_ms)
    args = ["signals", "--exchange", "bybit", "--market", "spot", "--symbol", "BTC/USDT",
            "--timeframe", "1h"]
    assert main([*args, "--as-of", "2026-05-20"]) == OK
    out = capsys.readouterr().out
    assert "as of 2026-05-20 00:00 UTC" in out
    assert "POC" in out and "regime " in out and "open interest: -" in out  # spot: no OI
    assert main([*args, "--as-of", "2001-01-01"]) == INVALID
    assert "2001-01-01" in capsys.readouterr().err


def test_tpo_row_size_comes_from_the_settings_file_per_symbol(sim, data_dir):
    (data_dir / "vectorflow.toml").write_text('[tpo_row_sizes]\n"BTC/USDT" = 25.0\n')
    settings = sim_settings(sim, data_dir)
    unit = Unit("bybit", "spot", "BTC/USDT", "30m")  # its own candles serve for TPO
    first, _ = sim.bundled_range("1d")
    ingest_series(unit, first, first + 100 * HOUR, settings, clock=sim.now_ms)
    assert update_signals(unit, settings).rows_written == 200
    sizes = read_view(settings.storage, "signals", {"symbol": "BTC/USDT"}, "DISTINCT tpo_row_size")
    assert set(sizes["tpo_row_size"].dropna()) == {25.0}
