"""Secrets: environment before Secret block, `vectorflow secrets`, and redaction from every log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from vectorflow.errors import InvalidInput
from vectorflow.secrets import (
    MASK,
    SecretRedactor,
    install_redaction,
    resolve_secret,
    use_block_reader,
)

CANARY = "vf-CANARY-secret-5e1b7a90"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _blocks(**values: str):
    """A stand-in for the Prefect Secret blocks: block name -> value."""
    return values.get


def test_a_secret_comes_from_the_environment_before_its_block():
    previous = use_block_reader(_blocks(**{"vectorflow-xai-api-key": "from-block"}))
    try:
        env = {"XAI_API_KEY": " from-env \n"}
        assert resolve_secret("XAI_API_KEY", env=env).get_secret_value() == "from-env"
        assert resolve_secret("xai_api_key", env={}).get_secret_value() == "from-block"
        assert resolve_secret("BYBIT_API_SECRET", env={}) is None
        assert resolve_secret("BYBIT_API_SECRET", env={"BYBIT_API_SECRET": " "}) is None
        with pytest.raises(InvalidInput, match="unknown secret 'OPENAI_KEY'.*XAI_API_KEY"):
            resolve_secret("OPENAI_KEY", env={})
        use_block_reader(None)  # a command run in process (no Prefect): the environment only
        assert resolve_secret("XAI_API_KEY", env={}) is None
    finally:
        use_block_reader(previous)


def test_an_unreadable_block_counts_as_unset_and_says_so_by_type_only(caplog):
    def unreachable(block: str):
        raise ConnectionError(f"http://user:{CANARY}@127.0.0.1:9/api refused")

    previous = use_block_reader(unreachable)
    try:
        assert resolve_secret("XAI_API_KEY", env={}) is None
    finally:
        use_block_reader(previous)
    assert "vectorflow-xai-api-key unreadable (ConnectionError)" in caplog.text
    assert CANARY not in caplog.text


def test_the_redactor_masks_message_arguments_and_tracebacks_and_keeps_the_record():
    redactor = SecretRedactor()
    redactor.add(CANARY)
    redactor.add("ab")  # too short to mask without garbling every line
    try:
        raise RuntimeError(f"refused key {CANARY}")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "key=%s ab", (CANARY,), sys.exc_info()
        )
    assert redactor.filter(record) is True
    line = logging.Formatter("%(message)s").format(record)
    assert CANARY not in line and f"key={MASK} ab" in line and f"refused key {MASK}" in line


@pytest.fixture
def redaction():
    """Redaction of CANARY installed in this process for one test, then removed."""
    factory = logging.getLogRecordFactory()
    redactor = install_redaction({"XAI_API_KEY": CANARY})
    yield redactor
    redactor.discard(CANARY)
    logging.setLogRecordFactory(factory)


def test_storage_keys_and_the_shared_state_password_are_masked_too():
    factory = logging.getLogRecordFactory()
    aws, password = "aws-canary-secret-4417", "pg-canary-password-8812"
    env = {"AWS_SECRET_ACCESS_KEY": aws,
           "VECTORFLOW_SHARED_STATE_URL": f"postgresql://vectorflow:{password}@db:5432/vf"}
    redactor = install_redaction(env)
    try:
        record = logging.getLogger("vectorflow.test").makeRecord(
            "vectorflow.test", logging.WARNING, __file__, 1, "key %s url %s", (aws, env[
                "VECTORFLOW_SHARED_STATE_URL"]), None)  # fmt: skip
        line = logging.Formatter("%(message)s").format(record)
        assert aws not in line and password not in line
        assert f"key {MASK} url postgresql://vectorflow:{MASK}@db:5432/vf" == line
    finally:
        redactor.discard(aws)
        redactor.discard(password)
        logging.setLogRecordFactory(factory)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_a_logged_secret_is_masked_on_the_console_and_in_the_prefect_api(prefect_api, redaction):
    from prefect import flow, get_run_logger
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    @flow(name="leaky")
    def leaky() -> None:
        logger = get_run_logger()
        logger.warning("the key is %s", CANARY)
        try:
            raise ValueError(f"bad key {CANARY}")
        except ValueError:
            logger.exception("request failed")

    lines = _Lines()
    run_logger = logging.getLogger("prefect.flow_runs")
    run_logger.addHandler(lines)
    try:
        state = leaky(return_state=True)
    finally:
        run_logger.removeHandler(lines)
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    stored = [log.message for log in logs]
    assert any(f"the key is {MASK}" in m for m in stored), stored
    assert any(f"bad key {MASK}" in m for m in stored), stored
    assert any(f"the key is {MASK}" in line for line in lines.lines)
    assert not [text for text in stored + lines.lines if CANARY in text]


def test_a_flow_file_loaded_by_path_as_a_worker_does_masks_the_environments_secrets():
    script = (
        "import logging, os\n"
        "from prefect.utilities.importtools import load_script_as_module\n"
        "load_script_as_module('flows/signals.py')\n"
        "logging.getLogger('vectorflow.x').warning('key %s', os.environ['BYBIT_API_KEY'])\n"
    )
    env = dict(os.environ, BYBIT_API_KEY=CANARY)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"key {MASK}" in done.stderr and CANARY not in done.stdout + done.stderr


def _vectorflow(args: list[str], api_url: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("XAI_API_KEY", "BYBIT_API_KEY")}
    env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [sys.executable, "-m", "vectorflow.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_secrets_set_stores_a_block_from_stdin_and_list_never_shows_a_value(prefect_api):
    from prefect.blocks.system import Secret

    from tests.playbooks.test_flow import _delete_block

    block = "vectorflow-bybit-api-key"  # no flow reads it: other tests are unaffected
    stored = _vectorflow(["secrets", "set", "bybit_api_key"], prefect_api, f"{CANARY}\n")
    try:
        assert stored.returncode == 0, stored.stderr[-2000:]
        assert f"stored BYBIT_API_KEY in the Prefect Secret block {block}" in stored.stdout
        assert Secret.load(block).get() == CANARY
        listed = _vectorflow(["secrets", "list"], prefect_api)
        assert listed.returncode == 0, listed.stderr[-2000:]
        (row,) = [line for line in listed.stdout.splitlines() if "BYBIT_API_KEY" in line]
        assert block in row and "set" in row and "block" in row
        assert CANARY not in stored.stdout + stored.stderr + listed.stdout + listed.stderr
    finally:
        _delete_block(block)
    empty = _vectorflow(["secrets", "set", "XAI_API_KEY"], prefect_api, "\n")
    assert empty.returncode == 2 and "nothing stored" in empty.stderr
    unknown = _vectorflow(["secrets", "set", "OPENAI_KEY"], prefect_api, "x\n")
    assert unknown.returncode == 2 and "unknown secret 'OPENAI_KEY'" in unknown.stderr


def _prefect_records_since(started) -> tuple[list[str], list[str], list[str]]:
    """(log messages, artifact data, flow run parameters) of every flow run started after."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterStartTime,
        LogFilter,
        LogFilterFlowRunId,
    )

    def pages(read) -> list:
        found, offset = [], 0
        while page := read(offset):
            found += page
            offset += len(page)
        return found

    with get_client(sync_client=True) as client:
        runs = pages(
            lambda offset: client.read_flow_runs(
                flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started)),
                limit=200,
                offset=offset,
            )
        )
        ids = [run.id for run in runs]
        logs = pages(
            lambda offset: client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                limit=200,
                offset=offset,
            )
        )
        artifacts = pages(
            lambda offset: client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)),
                limit=200,
                offset=offset,
            )
        )
    assert len(runs) >= 4 and logs and artifacts  # the demo's flows, their logs and artifacts
    return (
        [log.message for log in logs],
        [str(a.data) + str(a.description) for a in artifacts],
        [str(run.parameters) for run in runs],
    )


def test_a_canary_secret_appears_nowhere_after_a_full_demo(prefect_api, data_dir):
    """The canary is XAI_API_KEY and an exchange key in the environment and in Secret blocks."""
    from datetime import datetime, timezone

    from prefect.blocks.system import Secret

    from tests.conftest import run_cli
    from tests.playbooks.test_flow import _delete_block
    from vectorflow.sim.llm import FakeLLM

    blocks = ["vectorflow-xai-api-key", "vectorflow-binance-api-secret"]
    for block in blocks:
        Secret(value=CANARY).save(block, overwrite=True)
    env = {
        "VECTORFLOW_DATA_DIR": str(data_dir),
        "XAI_API_KEY": CANARY,
        "BINANCE_API_SECRET": CANARY,
    }
    started = datetime.now(timezone.utc)
    try:
        with FakeLLM() as llm:
            done = run_cli(["demo"], env | {"XAI_BASE_URL": llm.url}, prefect_api)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "grok" in done.stdout  # the key was used: playbooks came from the (fake) LLM
        assert llm.chat_requests[0]["headers"]["authorization"] == f"Bearer {CANARY}"
        logs, artifacts, parameters = _prefect_records_since(started)
    finally:
        for block in blocks:
            _delete_block(block)
    assert CANARY not in done.stdout + done.stderr
    assert not [text for text in logs + artifacts + parameters if CANARY in text]
    leaks = [p for p in data_dir.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert leaks == []  # lake, catalog, state.db, caches, reports
