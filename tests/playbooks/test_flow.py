"""The playbook flow and commands on a real Prefect API, against the fake LLM over sockets."""

from __future__ import annotations

import json
import logging
import time

import duckdb
import pytest

from tests.conftest import run_cli
from tests.playbooks.conftest import AS_OF, CANARY, HOUR, lake_of, make_candles, store_candles
from vectorflow.timeframes import ms_to_iso
from vectorflow.units import Unit

SERIES = [
    Unit("binance", "spot", "BTC/USDT", "1h"),
    Unit("bybit", "spot", "BTC/USDT", "1h"),
    Unit("binance", "linear", "BTC/USDT:USDT", "1h"),
    Unit("bybit", "linear", "BTC/USDT:USDT", "1h"),
]
AFTER = 60  # candles stored after as_of, so the playbooks can be graded


@pytest.fixture
def lake_with_series(data_dir):
    for i, unit in enumerate(SERIES):
        candles = make_candles(400, end_ms=AS_OF + AFTER * HOUR, seed=i)
        store_candles(lake_of(data_dir), unit, candles)
    return data_dir


@pytest.fixture
def grok_env(llm, lake_with_series, monkeypatch):
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(lake_with_series))
    monkeypatch.setenv("XAI_API_KEY", CANARY)
    monkeypatch.setenv("XAI_BASE_URL", llm.url)
    return lake_with_series


def _flow_run_extras(flow_run_id, wait: float = 5.0) -> tuple[list[str], list[str], dict]:
    """(log messages, artifact data, parameters) of a flow run, from the Prefect API.

    Run logs are shipped in batches by a background worker: flush it, then wait (up to `wait`
    seconds) until the flow's last log line ("Finished in state") has arrived.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    deadline = time.monotonic() + wait
    with get_client(sync_client=True) as client:
        while True:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
            messages = [log.message for log in logs]
            if any("Finished in state" in m for m in messages) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        parameters = client.read_flow_run(flow_run_id).parameters
    return messages, [str(a.data) for a in artifacts], parameters


def _files_containing(root, needle: str) -> list[str]:
    data = needle.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


class _Lines(logging.Handler):
    """Every log record of the process (Prefect's logging set-up drops pytest's caplog handler)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        # with a formatter Prefect counts it as a user's handler and leaves the root logger be
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def captured():
    """Log lines of every logger of the process during the test."""
    lines = _Lines()
    # Prefect's logging set-up may replace the root logger's handlers mid-test, so the handler
    # sits on the loggers that write: ours, the HTTP client's, Prefect's run loggers
    names = [
        "vectorflow",
        "urllib3",
        "requests",
        "prefect",
        "prefect.flow_runs",
        "prefect.task_runs",
    ]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(lines)
        logger.setLevel(logging.DEBUG)
    yield lines
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(lines)
        logger.setLevel(level)


def test_grok_playbooks_flow_and_the_canary_key_leaks_nowhere(prefect_api, llm, grok_env, captured):
    from flows.playbooks import generate_playbooks

    llm.script("wrong_order")  # one series needs a repair
    parameters = dict(
        exchanges=["binance", "bybit"],
        markets=["spot", "linear"],
        symbols=["BTC/USDT", "BTC/USDT:USDT"],
        timeframes=["1h"],
        as_of=ms_to_iso(AS_OF),
    )
    state = generate_playbooks(**parameters, return_state=True)
    assert state.is_completed(), state.message
    rows = state.result()
    assert sorted(r["playbook"] for r in rows) == ["ok", "ok", "ok", "repaired"]
    assert {r["source"] for r in rows} == {"grok"}
    assert len(llm.chat_requests) == 5  # four series, one repair
    assert [r["path"] for r in llm.requests].count("/v1/models") == 1
    assert all(r["json"]["model"] == "grok-4.3" for r in llm.chat_requests)

    logs, artifacts, params = _flow_run_extras(state.state_details.flow_run_id)
    # something to search: the run's artifact, and its log lines (in this process, and those
    # the API received: another test's global Prefect state may keep the latter from arriving)
    assert artifacts and any("grok playbook ok" in line for line in captured.lines)
    assert not [m for m in logs if CANARY in m]
    assert not [a for a in artifacts if CANARY in a]
    assert CANARY not in str(params)
    assert not [line for line in captured.lines if CANARY in line]
    assert _files_containing(grok_env, CANARY) == []  # lake, catalog, state.db

    again = generate_playbooks(**parameters, return_state=True).result()
    assert len(llm.chat_requests) == 5  # the second identical run cost nothing
    assert all(r["cached"] for r in again)
    con = duckdb.connect(str(grok_env / "vectorflow.duckdb"), read_only=True)
    latest = con.execute("SELECT count(*), bool_and(cached) FROM latest_playbooks").fetchone()
    con.close()
    assert latest == (4, True)


def test_a_model_the_api_does_not_offer_fails_the_run_naming_it(
    prefect_api, llm, grok_env, monkeypatch
):
    from flows.playbooks import generate_playbooks

    monkeypatch.setenv("VECTORFLOW_LLM_MODEL", "grok-0-retired")
    state = generate_playbooks(
        symbols=["BTC/USDT"], exchanges=["binance"], as_of=ms_to_iso(AS_OF), return_state=True
    )
    assert state.is_failed() and "model 'grok-0-retired' is not offered" in state.message
    assert llm.chat_requests == []


def _stored_playbooks(data_dir) -> list[tuple]:
    """The stored playbooks and their grades, without ids and wall-clock times."""
    con = duckdb.connect(str(data_dir / "vectorflow.duckdb"), read_only=True)
    try:
        books = con.execute(
            "SELECT exchange, market, symbol, timeframe, as_of, source, status, bias, "
            "confidence, entry_low, entry_high, stop_loss, rationale, valid_until "
            "FROM playbooks ORDER BY ALL"
        ).fetchall()
        grades = con.execute("SELECT bias, outcome FROM playbook_outcomes ORDER BY ALL").fetchall()
    finally:
        con.close()
    return books + grades


def test_playbook_and_grade_commands_land_the_same_in_process_and_as_flow_runs(
    prefect_api, lake_with_series, tmp_path
):
    from tests.playbooks.market_lake import copy_data_dir

    args = ["playbook", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h",
            "--as-of", ms_to_iso(AS_OF)]  # fmt: skip
    dirs = {"local": lake_with_series, "flow": copy_data_dir(lake_with_series, tmp_path / "f")}
    home = tmp_path / "prefect-home"
    local = run_cli(args, {"VECTORFLOW_DATA_DIR": str(dirs["local"]), "PREFECT_HOME": str(home)})
    flow = run_cli([*args, "--prefect"], {"VECTORFLOW_DATA_DIR": str(dirs["flow"])}, prefect_api)
    assert local.returncode == flow.returncode == 0, (local.stderr + flow.stderr)[-3000:]
    assert "running in this process" in local.stderr and not home.exists()
    assert "running as a Prefect flow run" in flow.stderr
    out = local.stdout
    assert "binance spot BTC/USDT 1h  as of 2026-05-28T20:00:00Z" in out
    assert "source      rules" in out and "status      ok" in out and "bias" in out
    assert out == flow.stdout  # the same playbook, printed the same

    graded = {
        "local": run_cli(["grade", "--horizon", "48"], {"VECTORFLOW_DATA_DIR": str(dirs["local"])}),
        "flow": run_cli(["grade", "--horizon", "48", "--prefect"],
                        {"VECTORFLOW_DATA_DIR": str(dirs["flow"])}, prefect_api),  # fmt: skip
    }
    assert [g.returncode for g in graded.values()] == [0, 0], graded["flow"].stderr[-3000:]
    assert "scorecard:" in graded["local"].stdout
    assert graded["local"].stdout == graded["flow"].stdout
    stored = _stored_playbooks(dirs["local"])
    assert stored == _stored_playbooks(dirs["flow"])
    (book, grade) = stored  # one playbook and its grade (a no_trade is graded too)
    assert grade[0] == book[7]


def test_the_key_can_come_from_a_prefect_secret_block(
    prefect_api, llm, lake_with_series, monkeypatch
):
    from prefect.blocks.system import Secret

    from flows.playbooks import generate_playbooks

    block = "vectorflow-xai-api-key"
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(lake_with_series))
    monkeypatch.setenv("XAI_BASE_URL", llm.url)
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    Secret(value=CANARY).save(block, overwrite=True)
    try:
        state = generate_playbooks(
            exchanges=["binance"],
            symbols=["BTC/USDT"],
            timeframes=["1h"],
            as_of=ms_to_iso(AS_OF),
            return_state=True,
        )
    finally:
        _delete_block(block)
    (row,) = state.result()
    assert (row["source"], row["playbook"]) == ("grok", "ok")
    assert llm.chat_requests[0]["headers"]["authorization"] == f"Bearer {CANARY}"
    logs, artifacts, params = _flow_run_extras(state.state_details.flow_run_id)
    assert not [m for m in logs + artifacts if CANARY in m] and CANARY not in str(params)
    assert _files_containing(lake_with_series, CANARY) == []


def _delete_block(name: str) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(name, block_type_slug="secret")
        client.delete_block_document(document.id)


@pytest.mark.parametrize("job", ["generate", "replay"])
def test_playbooks_are_written_from_signals_brought_up_to_date_first(
    prefect_api, lake_with_series, monkeypatch, job
):
    from flows.playbooks import generate_playbooks
    from flows.replay import replay_playbooks
    from vectorflow.config import load_settings
    from vectorflow.pipelines.signals import series_state, update_signals
    from vectorflow.playbooks.store import series_playbooks

    monkeypatch.delenv("XAI_API_KEY", raising=False)
    unit, data_dir = SERIES[0], lake_with_series
    update_signals(unit, load_settings(data_dir, env={}))
    (data_dir / "vectorflow.toml").write_text('[tpo_row_sizes]\n"BTC/USDT" = 25.0\n')
    settings = load_settings(data_dir, env={})
    assert series_state(settings, unit).reason == "options_changed"  # stored with the default
    picked = dict(exchanges=["binance"], markets=["spot"], symbols=["BTC/USDT"],
                  timeframes=["1h"], data_dir=str(data_dir), return_state=True)  # fmt: skip
    if job == "generate":
        state = generate_playbooks(as_of=ms_to_iso(AS_OF), **picked)
    else:
        state = replay_playbooks(start=ms_to_iso(AS_OF - HOUR), end=ms_to_iso(AS_OF), every="1h",
                                 **picked)  # fmt: skip
    assert state.is_completed(), state.message
    assert series_state(settings, unit).reason is None  # recomputed before the playbooks
    records = series_playbooks(settings.storage, unit, AS_OF - HOUR, AS_OF)
    assert records and all(r.payload for r in records)
    for record in records:
        inputs = json.loads(record.payload)["inputs"]
        assert inputs["signals"] == "stored"
        assert json.loads(inputs["signal_options"]) == {"tpo_row_size": 25.0}
