"""The system run as a person runs it, on one real Prefect server (`vectorflow up`) and worker.

Runs are triggered through the REST API as the UI's Run button does. The tests share one stack
and run in file order: the later ones stop and start it (`down`, `up`) and finally leave it
without a worker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
import requests

from tests.conftest import SIM_NOW, run_cli
from tests.ops.helpers import (
    FINAL,
    deployments,
    flow_runs,
    running_stack,
    trigger,
    wait_run,
    wait_state,
)
from tests.ops.test_prefect_yaml import TAGS, check_run_form
from vectorflow.sim import ExchangeSimulator
from vectorflow.timeframes import ms_to_iso, parse_time

DAY = 86_400_000
SETTINGS = """
request_timeout_seconds = 30
[series]
exchanges = ["binance"]
symbols = ["BTC/USDT", "BTC/USDT:USDT"]
timeframes = ["1h"]
orderbook_levels = 20
[backtest]
series = [{exchange = "binance", market = "spot", symbol = "BTC/USDT", timeframe = "1h"}]
strategies = ["ma_cross"]
grid = "small"
walk_forward = false
"""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]  # fmt: skip


class Stack:
    """The stack under test: its simulator, API, data dir, environment; what tests found."""

    def __init__(self, sim, api, data_dir, env):
        self.sim, self.api, self.data_dir, self.env = sim, api, data_dir, env
        self.found: dict[str, str] = {}

    def cli(self, *args: str, timeout: float = 300):
        """`vectorflow ARGS` as a person types it beside the stack."""
        return run_cli(list(args), self.env, timeout=timeout)

    def deployment(self, name: str) -> dict:
        return deployments(self.api)[name]

    def run(self, name: str, parameters: dict) -> str:
        return trigger(self.api, self.deployment(name), parameters)

    def logs(self, run: dict) -> list[str]:
        """A finished run's log lines, once its closing line (its final state) has arrived: the
        run's process sends them in batches."""
        deadline = time.monotonic() + 20
        while True:
            answer = requests.post(f"{self.api}/logs/filter", timeout=30, json={
                "logs": {"flow_run_id": {"any_": [run["id"]]}}, "sort": "TIMESTAMP_ASC"})
            lines = [log["message"] for log in answer.json()] if answer.ok else []
            if any(run["state"]["message"] in m for m in lines) or time.monotonic() > deadline:
                return lines
            time.sleep(1)

    def artifacts(self, flow_run_id: str) -> dict[str, dict]:
        answer = requests.post(f"{self.api}/artifacts/filter", timeout=30, json={
            "artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
        return {a["key"]: a for a in answer.json()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with ExchangeSimulator(now=SIM_NOW) as sim, running_stack(
        sim, tmp_path_factory.mktemp("ops"), settings=SETTINGS, processes=None
    ) as (api, data_dir, env):
        yield Stack(sim, api, data_dir, env)


def _since(days: int) -> str:
    return ms_to_iso(parse_time(SIM_NOW) - days * DAY)


def test_ui_triggered_runs_land_data_and_bad_input_fails_in_one_line(stack):
    first, _ = stack.sim.bundled_range("1h")
    good = stack.run("ingest-candles", {"symbols": ["BTC/USDT"], "since": ms_to_iso(first)})
    mixed = stack.run("ingest-candles", {"symbols": ["NOPE/USDT", "BTC/USDT"]})
    bad_date = stack.run("backfill", {"since": "2024-13-45T00:00:00Z"})
    form = requests.post(f"{stack.api}/deployments/{stack.deployment('backfill')['id']}"
                         "/create_flow_run", json={"parameters": {"since": "2024-01-01T00:00:00Z",
                         "exchanges": ["kraken"]}}, timeout=30)  # fmt: skip
    assert form.status_code == 409 and "kraken" in form.text  # the form refuses it
    run = wait_run(stack.api, good)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    assert run["name"].startswith("ingest binance 1h 20"), run["name"]  # says what ran
    assert "candles" in run["tags"]
    summary = stack.artifacts(good)["ingest-candles-run-summary"]["data"]
    assert "1 of 1 units ok" in summary and "binance spot BTC/USDT 1h" in summary
    failed = wait_run(stack.api, mixed)
    assert failed["state"]["message"] == "1 of 2 units failed: binance spot NOPE/USDT 1h"
    logs = stack.logs(failed)
    # Regression: the rows rode on Failed(data=rows) and Prefect logged "Unexpected result for
    # failed state"; then each failed unit and the run's end logged a traceback
    assert not [m for m in logs if "Unexpected result" in m or "Traceback" in m], logs
    assert any("UnknownSymbol" in m and "NOPE/USDT" in m for m in logs), logs
    table = stack.artifacts(mixed)["ingest-candles-units"]["data"]
    assert table.index('"status"') < table.index('"error"') < table.index('"exchange"')
    dated = wait_run(stack.api, bad_date, timeout_s=60)
    assert dated["state"]["type"] == "FAILED" and "2024-13-45" in dated["state"]["message"]
    assert dated["total_run_time"] < 15  # failed on the input, not deep in a task
    assert not [m for m in stack.logs(dated) if "Traceback" in m]


def test_every_deployment_form_on_the_server_explains_itself(stack):
    found = deployments(stack.api)
    assert set(TAGS) <= set(found)
    for name, tags in TAGS.items():
        check_run_form(name, found[name]["parameter_openapi_schema"])
        assert found[name]["tags"] == tags


def test_a_backfill_from_before_a_listing_ends_with_its_progress_at_100_percent(stack):
    listing = stack.sim.listing_ms("NEWUSDT")
    run_id = stack.run("backfill", {"since": ms_to_iso(listing - 20 * DAY),
                                    "symbols": ["NEW/USDT"], "timeframes": ["1h"]})  # fmt: skip
    run = wait_run(stack.api, run_id)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    progress = stack.artifacts(run_id)["backfill-progress"]
    assert progress["type"] == "progress" and float(progress["data"]) == 100.0
    assert "1/1 series" in progress["description"]


def test_a_failed_manual_backfill_is_reported_not_broken(stack):
    run_id = stack.run("backfill", {"since": _since(2), "symbols": ["NOPE/USDT"]})
    assert wait_run(stack.api, run_id)["state"]["type"] == "FAILED"
    status = stack.cli("status", "--now", SIM_NOW)
    assert status.returncode != 4, status.stdout
    (note,) = [line for line in status.stdout.splitlines() if "note: deployment backfill" in line]
    assert "NOPE/USDT" in note and "Failed" in note  # with its message
    manual = [line for line in status.stdout.splitlines() if line.startswith("backfill ")]
    assert manual and " manual " in manual[0] and "active" not in manual[0]


def test_nightly_and_playbooks_say_what_happened_and_link_the_served_report(stack):
    run_id = stack.run("nightly", {})
    playbooks = stack.run("generate-playbooks", {"symbols": ["BTC/USDT"]})
    written = wait_run(stack.api, playbooks, timeout_s=400)
    assert written["state"]["type"] == "COMPLETED", written["state"]["message"]
    notes = stack.artifacts(playbooks)["generate-playbooks-run-summary"]["data"]
    assert re.search(r"rules playbooks by status: 1 \w+", notes), notes
    run = wait_run(stack.api, run_id, timeout_s=400)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    artifacts = stack.artifacts(run_id)
    summary = artifacts["nightly-run-summary"]["data"]
    assert "backtests: 1 series backtested, 0 failed; strategies run: ma_cross" in summary
    assert re.search(r"best out of sample: binance spot BTC/USDT 1h ma_cross fast=\d+ slow=\d+",
                     summary), summary  # fmt: skip
    board = artifacts["nightly-leaderboard"]["data"]
    assert "| strategy | params |" in board and not re.search(r"\d\.\d{9}", board)  # rounded
    link = artifacts["nightly-report-binance-spot-btc-usdt-1h"]["data"]
    url = re.search(r"\((http://127\.0\.0\.1:\d+/backtest_binance_spot_BTC_USDT_1h\.html)\)", link)
    assert url, link
    page = requests.get(url.group(1), timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "plotly" in page.text and "ma_cross" in page.text
    stack.found["report"] = url.group(1)
    children = flow_runs(stack.api, {"flow_runs": {"parent_flow_run_id": {"any_": [run_id]}}})
    assert any(c["name"].startswith("nightly-backtests 1 series 20") for c in children), [
        c["name"] for c in children
    ]


def test_a_person_sees_the_form_help_and_the_report_chart(stack):
    playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    if "report" not in stack.found:
        pytest.skip("the nightly test made no report")
    started = time.monotonic()
    backfill = stack.deployment("backfill")
    ui = stack.api.removesuffix("/api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1800})
            page.goto(f"{ui}/deployments/deployment/{backfill['id']}/run")
            page.get_by_text("First candle open time, UTC").wait_for(timeout=30_000)
            body = page.inner_text("body")
            assert "Exchanges of the series" in body and "Select date and time" in body
            assert "No items selected" in body  # exchanges: a choice, empty by default
            assert 'Property is type "None"' not in body and "data_dir" not in body
            page.goto(stack.found["report"])
            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
            assert page.locator("table").count() >= 1 and "ma_cross" in page.inner_text("table")
        finally:
            browser.close()
    assert time.monotonic() - started < 60


def _running(stack, run_id: str) -> dict:
    return wait_state(stack.api, run_id, {"RUNNING"}, timeout_s=120)


def _a_running_snapshot(stack) -> dict:
    """A snapshot run in progress: the one triggered now, or (when that was cancelled as
    overlapping) the scheduled one it overlapped."""
    stack.run("snapshot-orderbooks", {})
    snapshots = stack.deployment("snapshot-orderbooks")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = flow_runs(stack.api, {"deployments": {"id": {"any_": [snapshots["id"]]}},
                                        "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}})
        if running:
            return running[0]
        time.sleep(1)
    pytest.fail("no snapshot run was running within 120 s")


def _ports(stack) -> tuple[str, str]:
    """The API's and the reports' ports of the stack (from what `up` recorded)."""
    from vectorflow.cli.ops import read_stack, stack_file

    recorded = read_stack(stack_file(stack.data_dir))
    return recorded["api_url"].split(":")[2].split("/")[0], recorded["reports_url"].split(":")[2]


def test_down_drains_runs_in_progress_and_up_starts_clean(stack):
    stack.sim.fault("slow", path="/api/v3/klines", delay=1.5, times=None)
    for path in ("/api/v3/depth", "/fapi/v1/depth"):
        stack.sim.fault("slow", path=path, delay=20, times=None)
    backfill = stack.run("backfill", {"since": _since(20), "symbols": ["BTC/USDT"],
                                      "timeframes": ["1m"]})  # fmt: skip
    _running(stack, backfill)
    snapshot = _a_running_snapshot(stack)["id"]
    port, reports_port = _ports(stack)
    down = stack.cli("down", "--timeout", "2")
    assert down.returncode == 0 and "stopped 3 process(es)" in down.stdout, down.stdout
    assert "paused the schedules of" in down.stdout and "snapshot-orderbooks" in down.stdout
    assert down.stdout.count("cancelled run") >= 2, down.stdout
    stack.sim.clear_faults()
    up_at = time.time()
    up = stack.cli("up", "--detach", "--port", port, "--reports-port", reports_port)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "resumed the schedules `down` paused" in up.stdout
    for run_id in (backfill, snapshot):
        run = requests.get(f"{stack.api}/flow_runs/{run_id}", timeout=30).json()
        # Regression: the engine answered the drain's SIGTERM by forcing Crashed over Cancelled
        assert run["state"]["type"] == "CANCELLED", run["state"]
        assert "vectorflow down" in run["state"]["message"]
    # the job is not blocked: its next scheduled run starts within one interval and completes
    snapshots = stack.deployment("snapshot-orderbooks")
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        runs = flow_runs(stack.api, {"deployments": {"id": {"any_": [snapshots["id"]]}},
                                     "flow_runs": {"state": {"type": {"any_": sorted(FINAL)}}},
                                     "sort": "EXPECTED_START_TIME_DESC", "limit": 5})  # fmt: skip
        later = [r for r in runs if r["auto_scheduled"]
                 and parse_time(r["expected_start_time"]) / 1000 > up_at]  # fmt: skip
        if later:
            assert later[0]["state"]["type"] == "COMPLETED", later[0]["state"]
            break
        time.sleep(2)
    else:
        pytest.fail("no scheduled snapshot completed within 150 s of `up`")
    again = wait_run(stack.api, stack.run("backfill", {"since": _since(1), "symbols": ["BTC/USDT"],
                                                       "timeframes": ["1h"]}))  # fmt: skip
    assert again["state"]["type"] == "COMPLETED", again["state"]["message"]


def _broken(status_stdout: str) -> str:
    """The lines `vectorflow status` lists under its verdict `broken` (none when not broken)."""
    verdict = status_stdout.rsplit("\nbroken\n", 1)
    lines = verdict[1].splitlines() if len(verdict) == 2 else []
    return "\n".join(line for line in lines if line.startswith("  - "))


def test_a_ghost_run_is_broken_until_reconciled(stack):
    stack.sim.fault("slow", path="/api/v3/klines", delay=1.5, times=None)
    run_id = stack.run("backfill", {"since": _since(20), "symbols": ["BTC/USDT"],
                                    "timeframes": ["1m"]})  # fmt: skip
    run = _running(stack, run_id)
    deadline = time.monotonic() + 30
    while not run.get("infrastructure_pid") and time.monotonic() < deadline:
        run = requests.get(f"{stack.api}/flow_runs/{run_id}", timeout=30).json()
    stack_file = stack.data_dir / "run" / "stack.json"
    (worker,) = json.loads(stack_file.read_text())["worker_pids"]
    os.killpg(worker, signal.SIGKILL)  # as a crash of the machine's processes would
    os.killpg(int(run["infrastructure_pid"]), signal.SIGKILL)
    stack.sim.clear_faults()
    ghost = requests.get(f"{stack.api}/flow_runs/{run_id}", timeout=30).json()
    history = requests.get(f"{stack.api}/flow_run_states/", params={"flow_run_id": run_id},
                           timeout=30).json()  # fmt: skip
    assert ghost["state"]["type"] == "RUNNING", history  # nothing is left to say otherwise
    status = stack.cli("status", "--now", SIM_NOW)
    broken = _broken(status.stdout)
    assert status.returncode == 4, status.stdout
    assert run["name"] in broken and "no live process" in broken, broken
    assert "vectorflow reconcile" in broken
    cleared = stack.cli("reconcile")
    assert cleared.returncode == 0 and f"crashed run {run['name']!r}" in cleared.stdout
    ended = requests.get(f"{stack.api}/flow_runs/{run_id}", timeout=30).json()
    assert ended["state"]["type"] == "CRASHED" and "no live process" in ended["state"]["message"]
    after = stack.cli("status", "--now", SIM_NOW)
    assert "no live process" not in _broken(after.stdout), after.stdout


def test_a_slot_held_with_no_open_run_is_broken_until_reconciled(stack):
    limit = stack.deployment("backfill")["global_concurrency_limit"]["name"]
    taken = requests.post(f"{stack.api}/v2/concurrency_limits/increment", timeout=30,
                          json={"names": [limit], "slots": 1, "mode": "concurrency"})
    assert taken.ok, taken.text  # as a server restart under an open run leaves it
    status = stack.cli("status", "--now", SIM_NOW)
    assert status.returncode == 4
    assert "deployment backfill holds 1 concurrency slot(s) with no open run" in status.stdout
    cleared = stack.cli("reconcile")
    assert "freed 1 concurrency slot(s) of backfill" in cleared.stdout, cleared.stdout
    assert stack.deployment("backfill")["global_concurrency_limit"]["active_slots"] == 0
