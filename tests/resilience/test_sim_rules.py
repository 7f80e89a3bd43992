"""The simulator's side: the exchanges' real budgets and bans, faults from the command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.resilience.conftest import REPO
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput
from vectorflow.sim import ExchangeSimulator
from vectorflow.sim.faults import Fault, load_faults

KLINES = {"symbol": "BTCUSDT", "interval": "1m", "limit": 1}


def test_binance_429_over_the_budget_then_418_for_ignoring_it():
    # a minute of 30 s: the burst (300 requests) fills a window in well under that, leaving
    # time to ignore it even on a loaded machine (a 6 s minute rolled over under a parallel run)
    with ExchangeSimulator(now="2026-06-01", time_scale=0.5, enforce_limits=True) as sim:
        session = requests.Session()
        answers = []
        while not answers or answers[-1].status_code == 200:  # weight 20 each, until refused
            answers.append(session.get(f"{sim.url}/api/v3/exchangeInfo"))
            assert len(answers) < 3000
        over, used = answers[-1], int(answers[-2].headers["X-MBX-USED-WEIGHT-1M"])
        assert over.status_code == 429 and over.json()["code"] == -1003
        assert 6000 - 20 < used <= 6000  # refused only when the next 20 did not fit
        assert 1 <= int(over.headers["Retry-After"]) <= 60  # the rest of the minute
        ignored = [session.get(f"{sim.url}/api/v3/klines", params=KLINES) for _ in range(3)]
        assert [r.status_code for r in ignored] == [429, 429, 418]
        ban = int(ignored[-1].headers["Retry-After"])
        assert 110 <= ban <= 120  # a 2-minute ban, in exchange seconds
        assert session.get(f"{sim.url}/fapi/v1/time").status_code == 418  # the whole exchange
        assert session.get(f"{sim.url}/v5/market/time").status_code == 200  # not Bybit
        assert sim.requests[-2]["status"] == 418 and sim.requests[-2]["weight"] == 0


def test_bybit_403_and_a_ten_minute_ban_past_600_requests_in_5_seconds():
    # a 10 s window (time scale 2): 601 requests fit in it even on a loaded machine
    with ExchangeSimulator(now="2026-06-01", time_scale=2.0, enforce_limits=True) as sim:
        session = requests.Session()
        statuses = [session.get(f"{sim.url}/v5/market/time").status_code for _ in range(601)]
        assert statuses[:600] == [200] * 600  # 600 per 5 s (10 s at this scale) at most
        assert statuses[600] == 403
        assert session.get(f"{sim.url}/v5/market/time").status_code == 403
        assert session.get(f"{sim.url}/api/v3/time").status_code == 200  # not Binance


def test_faults_from_text_and_a_json_script(tmp_path):
    script = tmp_path / "faults.json"
    script.write_text(json.dumps([{"kind": "error", "path": "/v5/market/kline", "code": 10016}]))
    faults = load_faults(["rate_limit@/api/v3/klines:after=2,retry_after=5", "reset"], script)
    assert faults[0] == Fault("rate_limit", "/api/v3/klines", after=2, retry_after=5.0)
    assert faults[1].kind == "reset" and faults[1].path is None
    assert (faults[2].code, faults[2].times) == (10016, 1)
    with pytest.raises(InvalidInput, match="unknown fault kind 'teapot'"):
        Fault.parse("teapot")
    with pytest.raises(InvalidInput, match="bad option"):
        Fault.parse("slow:speed=3")
    with pytest.raises(InvalidInput, match="needs start and end"):
        Fault.parse("missing@/api/v3/klines")


def test_sim_command_takes_faults_budgets_and_the_time_scale(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "vectorflow.cli", "sim", "--port", str(port)]
    command += ["--limits", "--time-scale", "0.01", "--fault", "ban@/api/v3/klines:retry_after=50"]
    server = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/api/v3/ping", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.1)
        first = requests.get(f"{url}/api/v3/klines", params=KLINES)
        assert first.status_code == 418 and first.headers["Retry-After"] == "50"
        assert requests.get(f"{url}/api/v3/time").status_code == 418  # banned...
        time.sleep(50 * 0.01 + 0.1)
        assert requests.get(f"{url}/api/v3/klines", params=KLINES).status_code == 200  # ...0.5 s
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_resilience_settings_come_from_the_file_and_the_environment(data_dir):
    (data_dir / "vectorflow.toml").write_text(
        "[resilience]\nbreaker_failures = 7\nretry_attempts = 2\n"
        "[resilience.budgets]\nbinance_spot = 3000\n"
    )
    settings = load_settings(data_dir, env={"VECTORFLOW_TIME_SCALE": "0.5"})
    r = settings.resilience
    assert (r.breaker_failures, r.retry_attempts, r.time_scale) == (7, 2, 0.5)
    assert r.budget_limit("binance_spot", 6000) == 3000 and r.budget_limit("bybit", 600) == 600
    assert settings.state_path == data_dir / "state.db"
    with pytest.raises(InvalidInput, match="VECTORFLOW_TIME_SCALE"):
        load_settings(data_dir, env={"VECTORFLOW_TIME_SCALE": "fast"})
    (data_dir / "vectorflow.toml").write_text("[resilience.budgets]\nkraken = 5\n")
    with pytest.raises(InvalidInput, match="unknown budget 'kraken'"):
        load_settings(data_dir, env={})
