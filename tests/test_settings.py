"""Settings precedence and the base-URL overrides (file, environment, per API group)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import run_cli
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput
from vectorflow.exchanges.client import connect, list_symbols
from vectorflow.exchanges.urls import override_api_urls


def test_environment_beats_file_beats_defaults(data_dir):
    (data_dir / "vectorflow.toml").write_text(
        'workers = 7\n[exchanges.bybit]\nurl = "http://127.0.0.1:1"\n'
    )
    from_file = load_settings(data_dir, env={})
    assert from_file.workers == 7 and from_file.endpoint("bybit").url == "http://127.0.0.1:1"
    assert from_file.endpoint("binance").url is None
    env = {"VECTORFLOW_WORKERS": "2", "VECTORFLOW_BYBIT_URL": "http://127.0.0.1:2/"}
    from_env = load_settings(data_dir, env=env)
    assert from_env.workers == 2 and from_env.endpoint("bybit").url == "http://127.0.0.1:2"
    assert load_settings(data_dir, env={}).with_overrides(workers=3, flush_rows=None).workers == 3


def test_data_dir_and_config_come_from_the_environment(tmp_path):
    other = tmp_path / "conf.toml"
    other.write_text("workers = 5\n")
    env = {"VECTORFLOW_DATA_DIR": str(tmp_path / "d"), "VECTORFLOW_CONFIG": str(other)}
    settings = load_settings(env=env)
    assert settings.data_dir == tmp_path / "d" and settings.workers == 5
    assert settings.catalog_path == tmp_path / "d" / "vectorflow.duckdb"


@pytest.mark.parametrize(
    "text,named",
    [
        ("workers = 0\n", "workers"),
        ("[exchanges.binance]\nurl = 'ftp://x'\n", "'ftp://x'"),
        ("[exchanges.binance]\nhost = 'x'\n", "host"),
        ("flush_rows = 'lots'\n", "'lots'"),
        ("[series]\nexchanges = ['kraken']\n", "'kraken'"),
        ("[series]\nmarkets = ['options']\n", "'options'"),
        ("[series]\ntimeframes = ['7m']\n", "7m"),
        ("[series]\nsymbols = []\n", "series.symbols"),
    ],
)
def test_malformed_settings_name_the_bad_value(data_dir, text, named):
    (data_dir / "vectorflow.toml").write_text(text)
    with pytest.raises(InvalidInput, match=named):
        load_settings(data_dir, env={})


def test_bad_environment_url_is_named(data_dir):
    with pytest.raises(InvalidInput, match="VECTORFLOW_BINANCE_URL"):
        load_settings(data_dir, env={"VECTORFLOW_BINANCE_URL": "localhost:8900"})


def test_base_url_keeps_paths_and_groups_replace_whole_urls():
    api = {
        "public": "https://api.binance.com/api/v3",
        "fapiPublic": "https://fapi.binance.com/fapi/v1",
        "ws": {"spot": "wss://stream.binance.com"},
    }
    out = override_api_urls(
        api, "http://127.0.0.1:8900", {"fapiPublic": "https://testnet.binancefuture.com/fapi/v1/"}
    )
    assert out["public"] == "http://127.0.0.1:8900/api/v3"
    assert out["fapiPublic"] == "https://testnet.binancefuture.com/fapi/v1"
    assert out["ws"] == api["ws"]
    with pytest.raises(InvalidInput, match="'fapiPrivateV9'"):
        override_api_urls(api, None, {"fapiPrivateV9": "http://x"})


def test_per_group_urls_from_the_file_reach_the_simulator(sim, data_dir):
    # the base URL points at a closed port: only the two groups the pipeline uses are redirected
    (data_dir / "vectorflow.toml").write_text(
        '[exchanges.binance]\nurl = "http://127.0.0.1:9"\n'
        f'[exchanges.binance.urls]\npublic = "{sim.url}/api/v3"\nfapiPublic = "{sim.url}/fapi/v1"\n'
    )
    client = connect("binance", load_settings(data_dir, env={}))
    assert "BTC/USDT" in list_symbols(client, "spot")
    assert "BTC/USDT:USDT" in list_symbols(client, "linear")
    assert client.urls["api"]["sapi"].startswith("http://127.0.0.1:9/")


def test_series_come_from_the_file_and_parameters_override_them(data_dir):
    (data_dir / "vectorflow.toml").write_text(
        "[series]\nexchanges = ['bybit']\nsymbols = ['ETH/USDT']\ntimeframes = ['5m', '4h']\n"
    )
    series = load_settings(data_dir, env={}).series
    assert series.pick() == {
        "exchanges": ["bybit"],
        "markets": ["spot", "linear"],
        "symbols": ["ETH/USDT"],
        "timeframes": ["5m", "4h"],
    }
    assert series.pick(symbols=["BTC/USDT:USDT"], timeframes=None)["symbols"] == ["BTC/USDT:USDT"]


def test_every_key_can_be_set_from_the_environment_and_the_long_name_wins(data_dir):
    (data_dir / "vectorflow.toml").write_text(
        "[resilience]\nbreaker_failures = 7\n[playbooks]\ntoken_budget = 5000\n"
    )
    env = {
        "VECTORFLOW_RESILIENCE__BREAKER_FAILURES": "3",
        "VECTORFLOW_SERIES__SYMBOLS": '["ETH/USDT"]',
        "VECTORFLOW_EXCHANGES__BYBIT__URL": "http://127.0.0.1:3/x",
        "VECTORFLOW_LAKE__RETENTION_DAYS": '{"candles": 400}',
        "VECTORFLOW_BACKTEST__WINDOWS__MAX_WINDOWS": "4",
        "VECTORFLOW_TIME_SCALE": "0.5",  # a short name...
        "VECTORFLOW_RESILIENCE__TIME_SCALE": "0.25",  # ...and the long one, which wins
        "VECTORFLOW_SIGNAL_TIMEFRAMES": '["1h"]',
        "VECTORFLOW_WORKERS": "",  # empty is unset
    }
    settings = load_settings(data_dir, env=env)
    assert settings.resilience.breaker_failures == 3 and settings.resilience.time_scale == 0.25
    assert settings.series.symbols == ["ETH/USDT"] and settings.series.timeframes == ["5m", "1h"]
    assert settings.endpoint("bybit").url == "http://127.0.0.1:3"
    assert settings.lake.retention_ms("candles") == 400 * 86_400_000
    assert settings.backtest.windows.max_windows == 4 and settings.signal_timeframes == ("1h",)
    assert settings.playbooks.token_budget == 5000 and settings.workers == 4  # file, default


def test_the_lake_storage_is_opened_from_the_resolved_lake_url(data_dir, tmp_path):
    assert load_settings(data_dir, env={}).storage.root == data_dir / "lake"
    (data_dir / "vectorflow.toml").write_text(f'[lake]\nurl = "{tmp_path / "filed"}"\n')
    assert load_settings(data_dir, env={}).storage.root == tmp_path / "filed"
    env = {"VECTORFLOW_LAKE_URL": str(tmp_path / "short"), "VECTORFLOW_LAKE__URL": str(tmp_path)}
    settings = load_settings(data_dir, env=env)
    assert settings.storage.root == tmp_path  # the long name wins, as for every key
    assert settings.with_overrides(workers=2).storage is settings.storage  # opened once
    (data_dir / "vectorflow.toml").write_text('[lake]\nurl = "ftp://host/lake"\n')
    with pytest.raises(InvalidInput, match="settings file .*lake.url: lake URL 'ftp://host/lake'"):
        load_settings(data_dir, env={})


@pytest.mark.parametrize(
    "env,named",
    [
        ({"VECTORFLOW_RESILIENCE__BREAKER_FAILURES": "many"}, "BREAKER_FAILURES 'many'"),
        ({"VECTORFLOW_SERIES__SYMBOLS": "[ETH/USDT"}, "VECTORFLOW_SERIES__SYMBOLS='\\[ETH/USDT'"),
        ({"VECTORFLOW_SERIES": '{"markets": ["options"]}'}, "VECTORFLOW_SERIES .*'options'"),
        ({"VECTORFLOW_WORKERS": "0"}, "VECTORFLOW_WORKERS '0'"),
        ({"VECTORFLOW_RESILIENCE__NAP": "3"}, "NAP '3': resilience.nap: not a settings key"),
        ({"XAI_BASE_URL": "api.x.ai"}, "XAI_BASE_URL 'api.x.ai': not an http"),
    ],
)
def test_a_malformed_environment_value_is_named_with_its_variable(data_dir, env, named):
    with pytest.raises(InvalidInput, match=named):
        load_settings(data_dir, env=env)


def test_a_secret_value_is_named_but_never_shown(data_dir):
    env = {"VECTORFLOW_RESILIENCE__SHARED_STATE_URL": "mysql://u:pa55word@h/db"}
    with pytest.raises(InvalidInput, match="SHARED_STATE_URL: must be a postgresql") as bad:
        load_settings(data_dir, env=env)
    assert "pa55word" not in str(bad.value)
    settings = load_settings(data_dir, env={"VECTORFLOW_SHARED_STATE_URL": "postgresql://u:pa55word@h/d"})
    assert "pa55word" not in repr(settings)


def test_an_explicit_environment_never_reads_the_process_one(data_dir, monkeypatch):
    monkeypatch.setenv("VECTORFLOW_WORKERS", "9")
    monkeypatch.setenv("VECTORFLOW_SERIES__SYMBOLS", "not json")
    assert load_settings(data_dir, env={}).workers == 4
    with pytest.raises(InvalidInput, match="VECTORFLOW_SERIES__SYMBOLS='not json'"):
        load_settings(data_dir)  # without `env`, the process environment is read


def test_a_settings_file_named_by_the_environment_must_be_a_file(data_dir, tmp_path):
    # Regression: a VECTORFLOW_CONFIG that did not exist was silently ignored
    missing = tmp_path / "nope.toml"
    with pytest.raises(InvalidInput, match=f"VECTORFLOW_CONFIG=.*no such settings file.*{missing}"):
        load_settings(data_dir, env={"VECTORFLOW_CONFIG": str(missing)})
    with pytest.raises(InvalidInput, match=f"settings file {tmp_path} is a directory"):
        load_settings(data_dir, env={"VECTORFLOW_CONFIG": str(tmp_path)})
    assert load_settings(data_dir, env={}).config_path == data_dir / "vectorflow.toml"  # absent


def test_the_known_names_of_the_settings_are_those_of_the_packages_that_own_them():
    from vectorflow.exchanges.specs import SPECS, all_budgets
    from vectorflow.lake.schema import DATASETS
    from vectorflow.settings.lake import DATASETS as SETTINGS_DATASETS
    from vectorflow.settings.resilience import BUDGETS
    from vectorflow.settings.series import EXCHANGES, MARKETS

    assert set(EXCHANGES) == set(SPECS) and set(BUDGETS) == set(all_budgets())
    assert set(SETTINGS_DATASETS) == set(DATASETS)
    assert all(set(spec.klines) == set(MARKETS) for spec in SPECS.values())


def test_importing_the_settings_loads_no_other_layer_and_sets_no_environment():
    # Regression: importing the settings imported vectorflow.backtest, which set NUMBA_CACHE_DIR
    code = (
        "import os, sys; before = dict(os.environ); import vectorflow.settings; "
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('vectorflow.')})); "
        "print(sorted(set(os.environ) - set(before)))"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    modules, added = out.stdout.splitlines()
    assert modules == "['errors', 'settings', 'timeframes']", out.stderr
    assert added == "[]"


def test_a_bad_environment_value_ends_the_command_with_one_line_and_exit_2(data_dir):
    env = {"VECTORFLOW_DATA_DIR": str(data_dir), "VECTORFLOW_RESILIENCE__BREAKER_FAILURES": "x"}
    result = run_cli(["ingest"], env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: VECTORFLOW_RESILIENCE__BREAKER_FAILURES 'x': Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_the_cli_points_numba_at_its_cache_before_the_signals_load(tmp_path):
    code = (
        "import os; from vectorflow.cli import main; main([]); "
        "from vectorflow.signals.regime import _true_range; _true_range(2.0, 1.0, 1.5)"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["HOME"] = str(tmp_path)  # the default cache: ~/.cache/vectorflow/numba
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cached = list((tmp_path / ".cache" / "vectorflow" / "numba").rglob("*regime*_true_range*"))
    assert cached, done.stderr
