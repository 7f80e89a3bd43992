"""Shared by the tests that run the system as a user does: `vectorflow up` on a real Prefect
server (SQLite or PostgreSQL), deployments triggered through the REST API like the UI's Run
button, and a PostgreSQL server of the test's own."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import run_cli, sim_env

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def deployments(api: str) -> dict[str, dict]:
    """Every deployment on the server by name."""
    found = requests.post(f"{api}/deployments/filter", json={}, timeout=30)
    found.raise_for_status()
    return {d["name"]: d for d in found.json()}


def trigger(api: str, deployment: dict, parameters: dict) -> str:
    """What the UI's Run button does: create a flow run of the deployment with parameters.

    The SQLite-backed server answers 503 while its scheduler holds the database (it is filling
    every deployment's schedule just after `up`); like a person clicking again, retry a few times.
    """
    for _ in range(20):
        created = requests.post(f"{api}/deployments/{deployment['id']}/create_flow_run",
                                json={"parameters": parameters}, timeout=30)  # fmt: skip
        if created.status_code != 503:
            break
        time.sleep(1)
    created.raise_for_status()
    return created.json()["id"]


def flow_runs(api: str, body: dict) -> list[dict]:
    """Flow runs matching a `/flow_runs/filter` body (asked again while the database is busy)."""
    for _ in range(20):
        answer = requests.post(f"{api}/flow_runs/filter", json=body, timeout=30)
        if answer.status_code != 503:
            break
        time.sleep(1)
    answer.raise_for_status()
    return answer.json()


def wait_state(api: str, flow_run_id: str, types: set[str], timeout_s: float = 120) -> dict:
    """The flow run once its state is one of `types` (fails the test after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = requests.get(f"{api}/flow_runs/{flow_run_id}", timeout=30)
        run = answer.json() if answer.ok else {}
        if run.get("state") and run["state"]["type"] in types:
            return run
        time.sleep(0.5)
    pytest.fail(f"flow run {flow_run_id} was not {'/'.join(types)} within {timeout_s} s")


def wait_run(api: str, flow_run_id: str, timeout_s: float = 180) -> dict:
    """The flow run once it reached a final state (fails the test after `timeout_s`)."""
    return wait_state(api, flow_run_id, FINAL, timeout_s)


@contextlib.contextmanager
def running_stack(
    sim, tmp_path: Path, *up_args: str, env: dict[str, str] | None = None,
    processes: int | None = 3, settings: str = "",
) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """`vectorflow up --detach` pointed at the simulator, then `vectorflow down`: yields
    (API URL, data dir, environment). `processes`: what `down` must report stopping (the
    server, the reports' server, each worker; None: not checked); `settings`: the data dir's
    settings file."""
    port, reports_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if settings:
        (data_dir / "vectorflow.toml").write_text(settings)
    full_env = sim_env(sim, data_dir) | {"PREFECT_HOME": str(tmp_path / "prefect-home"),
                                         "PREFECT_WORKER_QUERY_SECONDS": "1"}  # fmt: skip
    full_env |= env or {}
    started = run_cli(["up", "--detach", "--port", str(port), "--reports-port", str(reports_port),
                       *up_args], full_env, timeout=300)  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"http://127.0.0.1:{port}" in started.stdout
    api = f"http://127.0.0.1:{port}/api"
    try:
        yield api, data_dir, full_env
    finally:
        stopped = run_cli(["down", "--timeout", "5"], full_env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert processes is None or f"stopped {processes}" in stopped.stdout, stopped.stdout
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{api}/health", timeout=2)


def postgres_bindir() -> Path | None:
    """Where PostgreSQL's server programs are (Debian: /usr/lib/postgresql/<version>/bin)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


@contextlib.contextmanager
def postgres_server(database: str = "prefect") -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 (a free port, trust auth, fsync off), with
    `database` created; yields its SQLAlchemy asyncpg URL, then stops it and removes its files.

    initdb refuses to run as root: as root the cluster belongs to the `postgres` user (Debian's
    package creates it). Skips, saying why, when PostgreSQL is not installed."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="vectorflow-pg-"))  # not under pytest's 0700 folders
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without `runuser` to start PostgreSQL as its own user")
        try:
            shutil.chown(root, user="postgres", group="postgres")
        except LookupError:
            pytest.skip("running as root and there is no `postgres` user to run PostgreSQL")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port, user = root / "cluster", free_port(), "vectorflow"

    def run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout}\n{done.stderr}"
        return done

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8",
            "--no-sync")  # fmt: skip
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
            "-w", "-t", "60", "start")  # fmt: skip
        try:
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database)
            yield f"postgresql+asyncpg://{user}@127.0.0.1:{port}/{database}"
        finally:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                            "-w", "stop"], capture_output=True, timeout=60)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
