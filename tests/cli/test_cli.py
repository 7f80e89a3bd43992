"""The command line: help, bad input and exit codes, SQL output. In-process where no flow runs."""

from __future__ import annotations

import json

import pytest

from tests.conftest import sim_env
from vectorflow.cli import INVALID, OK, build_parser, main


def _commands() -> list[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return sorted(sub.choices)


COMMANDS = _commands()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"vectorflow {command}" in out


def test_top_level_help_lists_every_command_and_version(capsys):
    help_text = build_parser().format_help()
    assert {"demo", "ingest", "sql", "markets", "sim"} <= set(COMMANDS)
    for command in COMMANDS:
        assert command in help_text
    with pytest.raises(SystemExit):
        main(["--version"])
    from vectorflow import __version__

    assert capsys.readouterr().out.strip() == f"vectorflow {__version__}"


GOOD = ["--symbol", "BTC/USDT", "--since", "2024-01-01"]
BAD_INPUT = [
    (["--exchange", "kraken", *GOOD], "'kraken'"),
    (["--market", "futures", *GOOD], "'futures'"),
    (["--timeframe", "7m", *GOOD], "'7m'"),
    (["--symbol", "BTCUSDT", "--since", "2024-01-01"], "'BTCUSDT'"),
    (["--market", "spot", "--symbol", "BTC/USDT:USDT", "--since", "2024-01-01"], "BTC/USDT:USDT"),
    (["--symbol", "BTC/USDT", "--since", "2024-02-01", "--until", "2024-01-01"], "2024-02-01"),
    (["--symbol", "BTC/USDT", "--since", "2999-01-01"], "future"),
    (["--symbol", "BTC/USDT", "--since", "yesterday"], "'yesterday'"),
]


@pytest.mark.parametrize("args,named", BAD_INPUT)
def test_invalid_ingest_input_exits_2_naming_the_value_before_any_request(
    args, named, sim, data_dir, monkeypatch, capsys
):
    for key, value in sim_env(sim, data_dir).items():
        monkeypatch.setenv(key, value)
    sim.clear_requests()
    assert main(["ingest", *args]) == INVALID
    assert named in capsys.readouterr().err
    assert sim.requests == []
    assert not (data_dir / "lake").exists()


def test_malformed_config_exits_2_naming_the_key(data_dir, monkeypatch, capsys):
    (data_dir / "vectorflow.toml").write_text("workers = 'many'\n[exchanges.kraken]\nurl='x'\n")
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(data_dir))
    assert main(["ingest", "--symbol", "BTC/USDT", "--since", "2024-01-01"]) == INVALID
    err = capsys.readouterr().err
    assert "workers" in err and "'many'" in err and "kraken" in err


def test_unparseable_config_exits_2(data_dir, monkeypatch, capsys):
    (data_dir / "vectorflow.toml").write_text("workers = = 3\n")
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(data_dir))
    assert main(["sql", "SELECT 1"]) == INVALID
    assert "vectorflow.toml" in capsys.readouterr().err


def test_sql_prints_table_csv_and_json_and_a_sql_error_exits_2(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(data_dir))
    query = "SELECT 1 AS a, 'x' AS b, NULL AS c"
    assert main(["sql", query]) == OK
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["a", "b", "c"] and table[2].split() == ["1", "x", "NULL"]
    assert main(["sql", query, "--format", "csv"]) == OK
    assert capsys.readouterr().out.splitlines() == ["a,b,c", "1,x,"]
    assert main(["sql", query, "--format", "json"]) == OK
    assert json.loads(capsys.readouterr().out) == [{"a": 1, "b": "x", "c": None}]
    assert main(["sql", "SELECT * FROM no_such_view"]) == INVALID
    assert "no_such_view" in capsys.readouterr().err


def test_sql_over_an_empty_lake_has_typed_empty_views(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(data_dir))
    assert main(["sql", "SELECT count(*) AS n FROM candles, candle_gaps", "--format", "csv"]) == OK
    assert capsys.readouterr().out.splitlines() == ["n", "0"]


def test_markets_lists_symbols_of_one_market(sim, data_dir, monkeypatch, capsys):
    for key, value in sim_env(sim, data_dir).items():
        monkeypatch.setenv(key, value)
    assert main(["markets", "--exchange", "bybit", "--market", "linear"]) == OK
    symbols = capsys.readouterr().out.split()
    assert "BTC/USDT:USDT" in symbols and "BTC/USDT" not in symbols
    assert "BNB/USDT:USDT" not in symbols  # only Binance lists it
    assert main(["markets", "--exchange", "bybit", "--market", "margin"]) == INVALID
    assert "'margin'" in capsys.readouterr().err


def test_sim_command_serves_both_exchanges_on_the_given_port(tmp_path):
    import socket
    import subprocess
    import sys
    import time

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "vectorflow.cli", "sim", "--port", str(port), "--now", "2026-01-01"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                spot = requests.get(f"http://127.0.0.1:{port}/api/v3/exchangeInfo", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.2)
        bybit = requests.get(
            f"http://127.0.0.1:{port}/v5/market/kline",
            timeout=5,
            params={"category": "linear", "symbol": "BTCUSDT", "interval": "60", "limit": 3},
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "BTCUSDT" in {s["symbol"] for s in spot.json()["symbols"]}
    assert "X-MBX-USED-WEIGHT-1M" in spot.headers
    rows = bybit.json()["result"]["list"]
    assert len(rows) == 3 and int(rows[0][0]) <= 1767225600000  # pinned clock: 2026-01-01
