"""Failed runs posted to a webhook: `vectorflow up` on a real Prefect server, a local webhook."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import run_cli, sim_env
from tests.ops.helpers import free_port, trigger, wait_run
from tests.webhook import TOKEN_PATH
from vectorflow.cli.notifications import NAME, configure_notifications
from vectorflow.timeframes import ms_to_iso


@pytest.fixture
def stack_with_webhook(sim, tmp_path, webhook):
    port = free_port()
    data_dir = tmp_path / "data"
    env = sim_env(sim, data_dir) | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "VECTORFLOW_WEBHOOK_URL": webhook.url,
    }
    started = run_cli(["up", "--detach", "--port", str(port), "--reports-port", str(free_port())],
                      env, timeout=300)  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"posted to http://127.0.0.1:{webhook.server_address[1]}" in started.stdout
    assert TOKEN_PATH not in started.stdout + started.stderr  # the URL's token is never printed
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        stopped = run_cli(["down", "--timeout", "5"], env)
        assert stopped.returncode == 0 and "stopped 3" in stopped.stdout  # server, reports, worker


def test_a_failed_run_posts_its_deployment_run_state_and_failed_units(
    stack_with_webhook, webhook, sim
):
    api = stack_with_webhook
    deployments = {
        d["name"]: d for d in requests.post(f"{api}/deployments/filter", json={}, timeout=10).json()
    }
    first, _ = sim.bundled_range("1h")
    parameters = {
        "exchanges": ["binance"],
        "symbols": ["NOPE/USDT"],  # not listed by the exchange: the unit fails
        "timeframes": ["1h"],
        "since": ms_to_iso(first),
    }
    run = wait_run(api, trigger(api, deployments["ingest-candles"], parameters))
    assert run["state"]["type"] == "FAILED", run["state"]["message"]

    post = webhook.wait_for(run["name"], timeout_s=30)
    text = post["text"]
    assert post["path"] == TOKEN_PATH
    assert "deployment: ingest-candles" in text and "flow: ingest-candles" in text
    assert f"flow run: {run['name']}" in text and "state: Failed" in text
    assert "1 of 1 units failed: binance spot NOPE/USDT 1h" in text  # the failed units
    assert run["id"] in text  # the link to the run in the UI

    # a second `up` replaces the automation instead of adding one; no URL removes it
    configure_notifications(webhook.url, api)
    automations = requests.post(f"{api}/automations/filter", json={}, timeout=10).json()
    assert [a["name"] for a in automations] == [NAME]
    configure_notifications(None, api)
    assert requests.post(f"{api}/automations/filter", json={}, timeout=10).json() == []


def test_the_webhook_url_comes_from_the_environment_then_the_settings_file(data_dir):
    from vectorflow.config import load_settings
    from vectorflow.errors import InvalidInput

    (data_dir / "vectorflow.toml").write_text(
        '[notifications]\nwebhook_url = "https://hooks.example/file"\n'
    )
    env = {"VECTORFLOW_DATA_DIR": str(data_dir)}
    assert load_settings(env=env).webhook_url == "https://hooks.example/file"
    url = "https://hooks.example/env"
    assert load_settings(env=env | {"VECTORFLOW_WEBHOOK_URL": url}).webhook_url == url
    with pytest.raises(InvalidInput, match="VECTORFLOW_WEBHOOK_URL: not an http") as bad:
        load_settings(env=env | {"VECTORFLOW_WEBHOOK_URL": "hooks.example/T0/secret-token"})
    assert "secret-token" not in str(bad.value)  # a URL may hold a token: never echoed
