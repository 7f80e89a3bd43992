"""Where commands run: in this process by default (no Prefect server), as a flow run with
`--prefect` or a configured server; both land the same rows and exit the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import query_catalog, run_cli, sim_env
from vectorflow.timeframes import ms_to_iso

HEAVY = ("prefect", "vectorbt", "numba")


def _modules_after(code: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["ingest", "--help"], ["status", "--help"]])
def test_help_imports_no_prefect_vectorbt_or_numba(argv, tmp_path):
    code = (
        "import contextlib, io\nfrom vectorflow.cli import main\n"
        f"with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):"
        f" main({argv!r})"
    )
    loaded = _modules_after(code, {"VECTORFLOW_DATA_DIR": str(tmp_path)})
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_an_ingest_with_nothing_new_imports_no_signal_code_prefect_or_shared_state(sim, tmp_path):
    first, _ = sim.bundled_range("1h")
    args = ["ingest", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h"]
    env = sim_env(sim, tmp_path / "data")
    assert run_cli([*args, "--since", ms_to_iso(first)], env).returncode == 0
    code = f"from vectorflow.cli import main\nassert main({args!r}) == 0"
    loaded = _modules_after(code, env)
    assert "vectorflow.pipelines.candles" in loaded  # it ran, and landed nothing
    heavy = ("pandas", "sqlalchemy", "numba", "prefect", "vectorbt", "vectorflow.signals")
    assert not [m for m in loaded if m.split(".")[0] in heavy or m.startswith(heavy)]


def _candles(data_dir: Path) -> list[tuple]:
    return query_catalog(
        data_dir,
        "SELECT exchange, market, symbol, timeframe, epoch_ms(open_time), open, high, low, "
        "close, volume, quote_volume, trades, taker_buy_volume FROM candles ORDER BY ALL",
    )


def _table(stdout: str) -> list[list[str]]:
    """The unit table's rows, without the `seconds` column (a wall time)."""
    lines = [line.split() for line in stdout.splitlines() if line and not line.startswith("(")]
    header, body = lines[0], lines[2:]
    keep = [i for i, name in enumerate(header) if name != "seconds"]
    return [[row[i] for i in keep if i < len(row)] for row in body]


def test_ingest_in_process_starts_no_server_and_lands_what_a_flow_run_lands(
    prefect_api, sim, tmp_path
):
    first, _ = sim.bundled_range("1h")
    args = ["ingest", "--exchange", "binance", "--exchange", "bybit", "--symbol", "BTC/USDT",
            "--symbol", "NOPE/USDT", "--timeframe", "1h", "--since", ms_to_iso(first)]  # fmt: skip
    home = tmp_path / "prefect-home"
    local_dir, flow_dir = tmp_path / "local", tmp_path / "flow"
    local = run_cli(args, {**sim_env(sim, local_dir), "PREFECT_HOME": str(home)})
    remote = run_cli([*args, "--prefect"], sim_env(sim, flow_dir), prefect_api)

    assert "running in this process" in local.stderr.splitlines()[0]
    assert f"running as a Prefect flow run on {prefect_api}" in remote.stderr
    assert not home.exists()  # nothing of Prefect's was written, so no server ran
    assert "Starting temporary server" not in local.stderr + local.stdout
    assert local.returncode == remote.returncode == 1  # NOPE/USDT fails on both venues
    message = "2 of 4 units failed: binance spot NOPE/USDT 1h, bybit spot NOPE/USDT 1h"
    assert message in local.stderr and message in remote.stderr
    assert _table(local.stdout) == _table(remote.stdout)
    assert _candles(local_dir) == _candles(flow_dir) and len(_candles(local_dir)) > 1000


def test_market_data_and_compact_land_the_same_in_both_modes(prefect_api, sim, tmp_path):
    args = ["market-data", "--symbol", "BTC/USDT:USDT", "--dataset", "open_interest",
            "--dataset", "funding_rates", "--period", "1h"]  # fmt: skip
    dirs = {"local": tmp_path / "local", "flow": tmp_path / "flow"}
    done = {
        "local": run_cli(args, sim_env(sim, dirs["local"])),
        "flow": run_cli([*args, "--prefect"], sim_env(sim, dirs["flow"]), prefect_api),
    }
    assert [d.returncode for d in done.values()] == [0, 0], done["local"].stderr[-2000:]
    assert _table(done["local"].stdout) == _table(done["flow"].stdout)
    sql = {
        "open_interest": "SELECT exchange, symbol, epoch_ms(time), open_interest "
        "FROM open_interest ORDER BY ALL",
        "funding_rates": "SELECT exchange, symbol, epoch_ms(funding_time), funding_rate "
        "FROM funding_rates ORDER BY ALL",
    }
    for query in sql.values():
        assert query_catalog(dirs["local"], query) == query_catalog(dirs["flow"], query)
    compacted = {
        "local": run_cli(["compact"], sim_env(sim, dirs["local"])),
        "flow": run_cli(["compact", "--prefect"], sim_env(sim, dirs["flow"]), prefect_api),
    }
    assert [d.returncode for d in compacted.values()] == [0, 0]
    assert _table(compacted["local"].stdout) == _table(compacted["flow"].stdout)


def test_prefect_option_without_a_server_says_how_to_start_one(sim, data_dir, tmp_path):
    env = {**sim_env(sim, data_dir), "PREFECT_HOME": str(tmp_path / "home")}
    done = run_cli(["ingest", "--symbol", "BTC/USDT", "--timeframe", "1h", "--prefect"], env)
    assert done.returncode == 2
    assert "vectorflow up --detach" in done.stderr and "Traceback" not in done.stderr
    assert not list(data_dir.glob("lake/candles/**/*.parquet"))  # nothing ran


def test_backfill_lands_the_same_and_draws_its_bar_in_both_modes(prefect_api, sim, tmp_path):
    since = (sim.now_ms() - 5 * 86_400_000) // 86_400_000 * 86_400_000
    args = ["backfill", "--exchange", "binance", "--symbol", "BTC/USDT", "--symbol", "NOPE/USDT",
            "--timeframe", "1h", "--since", ms_to_iso(since)]  # fmt: skip
    dirs = {"local": tmp_path / "local", "flow": tmp_path / "flow"}
    local = run_cli(args, sim_env(sim, dirs["local"]))
    flow = run_cli([*args, "--prefect"], sim_env(sim, dirs["flow"]), prefect_api)
    assert local.returncode == flow.returncode == 1  # NOPE/USDT failed, BTC/USDT landed
    message = "1 of 2 units failed: binance spot NOPE/USDT 1h"
    assert message in local.stderr and message in flow.stderr
    bar = f"1/1 series 1 pages {(sim.now_ms() - since) // 3_600_000} candles"  # its last state
    assert bar in local.stderr and bar in flow.stderr  # NOPE/USDT never started
    assert _table(local.stdout) == _table(flow.stdout)
    assert _candles(dirs["local"]) == _candles(dirs["flow"])
    assert len(_candles(dirs["local"])) == (sim.now_ms() - since) // 3_600_000
