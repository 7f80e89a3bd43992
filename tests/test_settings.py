"""Settings precedence and the base-URL overrides (file, environment, per API group)."""

from __future__ import annotations

import pytest

from vectorflow.errors import InvalidInput
from vectorflow.exchanges.client import connect, list_symbols
from vectorflow.exchanges.urls import override_api_urls
from vectorflow.settings import load_settings


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
