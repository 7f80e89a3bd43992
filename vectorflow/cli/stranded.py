"""Runs no live process owns and concurrency slots no open run holds: found, and cleared.

A deployment's flow run is *open* while Pending, Running or Cancelling. It is owned by the
worker named in its `prefect.worker.name` label and, once started, by the flow process whose
pid is its `infrastructure_pid`. For a worker of this host (named after it, as `vectorflow up`
names them, `vm-1`, and the docs' `--name "$(hostname)"`) the processes themselves are checked:
the run is owned while its pid runs that very flow run, or, before its process started, while
that worker runs. For another host's worker the server's word is taken (a recent heartbeat).
A run without a worker label is never judged.

A deployment's concurrency slot (its `deployment:<id>` limit) is taken while one of its runs is
open. Prefect keeps the slot's lease in the server's memory: a server stopped while a run was
open leaves the slot taken for good, and the job's next runs wait or are cancelled
("Deployment concurrency limit reached"). A slot taken with no open run is *leaked*.

`reconcile` ends each stranded run (Crashed; Cancelled when it was being cancelled) and frees
the leaked slots; `vectorflow up`, `vectorflow worker` and `vectorflow reconcile` run it, and
`vectorflow status` reports what it would clear.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

POOL = "vectorflow"
OPEN = ("PENDING", "RUNNING", "CANCELLING")
TIMEOUT_S = 30


def post(api: str, path: str, body: dict) -> list | dict:
    """POST `body` to the Prefect API; the JSON answer (HTTPError on a refusal)."""
    answer = requests.post(f"{api}{path}", json=body, timeout=TIMEOUT_S)
    answer.raise_for_status()
    return answer.json() if answer.content else {}


def pool_deployments(api: str) -> list[dict]:
    """The deployments on the `vectorflow` work pool, by name."""
    found = post(api, "/deployments/filter", {"work_pools": {"name": {"any_": [POOL]}}})
    return sorted(found, key=lambda d: d["name"])


def open_runs(api: str, deployments: list[dict]) -> list[dict]:
    """The open flow runs of `deployments`."""
    if not deployments:
        return []
    return post(api, "/flow_runs/filter", {"flow_runs": {
        "deployment_id": {"any_": [d["id"] for d in deployments]},
        "state": {"type": {"any_": list(OPEN)}}}})  # fmt: skip


def _local(worker: str) -> bool:
    host = socket.gethostname()
    return worker == host or worker.startswith(f"{host}-")


def _cmdline(pid: str | int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def runs_flow_run(pid: str | int, run_id: str) -> bool:
    """True while process `pid` of this host runs flow run `run_id`."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"PREFECT__FLOW_RUN_ID={run_id}".encode() in environ.split(b"\0")


def local_worker_running(name: str) -> bool:
    """True while a worker process called `name` runs on this host."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():  # `vectorflow worker` asking before it becomes the worker
            continue
        argv = _cmdline(pid)
        if "worker" in argv and "--name" in argv and name in argv:
            return True
    return False


def online_workers(api: str) -> set[str]:
    """Names of the pool's workers whose heartbeat is recent."""
    try:
        workers = post(api, f"/work_pools/{POOL}/workers/filter", {})
    except requests.HTTPError:
        return set()
    return {w["name"] for w in workers if w.get("status") == "ONLINE"}


@dataclass(frozen=True)
class Stranded:
    """An open run nobody runs, and why that is known."""

    run: dict
    deployment: str
    why: str

    def describe(self) -> str:
        """`run 'x' of backfill is Running with no live process (pid 12 is gone)`."""
        state = self.run["state"]["name"]
        return f"run {self.run['name']!r} of {self.deployment} is {state} with {self.why}"


def _why_stranded(run: dict, online: set[str]) -> str | None:
    """Why nobody runs `run`, or None while somebody may."""
    worker = (run.get("labels") or {}).get("prefect.worker.name")
    if not worker:
        return None
    if not _local(worker):
        return None if worker in online else f"no live worker ({worker} is offline)"
    pid = run.get("infrastructure_pid")
    if pid:
        alive = runs_flow_run(pid, run["id"])
        return None if alive else f"no live process (pid {pid} on this host is gone)"
    return None if local_worker_running(worker) else f"no live worker ({worker} is not running)"


def stranded_runs(api: str, deployments: list[dict] | None = None) -> list[Stranded]:
    """The open runs of the pool's deployments that no live process owns."""
    deployments = pool_deployments(api) if deployments is None else deployments
    names = {d["id"]: d["name"] for d in deployments}
    online = online_workers(api)
    found = []
    for run in open_runs(api, deployments):
        if why := _why_stranded(run, online):
            found.append(Stranded(run, names.get(run["deployment_id"], "?"), why))
    return found


def leaked_slots(api: str) -> dict[str, tuple[str, int]]:
    """Per deployment: its limit's name and the slots taken beyond its open runs.

    Runs are counted before and after the limits are read; a deployment whose count moved
    meanwhile (a run started or ended) is left for the next look.
    """
    before = _open_counts(api, pool_deployments(api))
    deployments = pool_deployments(api)  # with each limit's slots taken
    after = _open_counts(api, deployments)
    leaked = {}
    for d in deployments:
        limit = d.get("global_concurrency_limit") or {}
        if not limit or before.get(d["id"], 0) != after.get(d["id"], 0):
            continue
        excess = int(limit.get("active_slots") or 0) - after.get(d["id"], 0)
        if excess > 0:
            leaked[d["name"]] = (limit["name"], excess)
    return leaked


def _open_counts(api: str, deployments: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in open_runs(api, deployments):
        counts[run["deployment_id"]] = counts.get(run["deployment_id"], 0) + 1
    return counts


def end_run(api: str, run: dict, message: str, cancelled: bool = False) -> None:
    """Force `run` (and its open subflow runs) to Crashed, or Cancelled; Prefect then frees
    the slot the run held."""
    state = {"type": "CANCELLED", "name": "Cancelled"} if cancelled else \
        {"type": "CRASHED", "name": "Crashed"}  # fmt: skip
    children = post(api, "/flow_runs/filter", {"flow_runs": {
        "parent_flow_run_id": {"any_": [run["id"]]}, "state": {"type": {"any_": list(OPEN)}}}})
    for each in [*children, run]:
        post(api, f"/flow_runs/{each['id']}/set_state",
             {"state": {**state, "message": message}, "force": True})  # fmt: skip


def free_slots(api: str, limit_name: str, slots: int) -> None:
    """Give back `slots` of the concurrency limit `limit_name`."""
    post(api, "/v2/concurrency_limits/decrement", {"names": [limit_name], "slots": slots})


def reconcile(api: str, say: Callable[[str], None] = print) -> int:
    """End every stranded run and free every leaked slot, saying each; how many were cleared."""
    cleared = 0
    for found in stranded_runs(api):
        cancelling = found.run["state"]["type"] == "CANCELLING"
        end_run(api, found.run, f"no live process owns it: {found.why}", cancelled=cancelling)
        say(f"{'cancelled' if cancelling else 'crashed'} {found.describe()}")
        cleared += 1
    for deployment, (limit, slots) in leaked_slots(api).items():
        free_slots(api, limit, slots)
        say(f"freed {slots} concurrency slot(s) of {deployment} that no open run held")
        cleared += 1
    return cleared
