"""`vectorflow down`'s drain: nothing new starts, runs in progress finish or are stopped cleanly.

1. The pool's scheduled deployments and the pool are paused (Prefect deletes their runs still
   Scheduled, so no backlog of late runs bursts out at the next `up`); what was paused is
   recorded, and `up` resumes exactly that (a deployment a person paused stays paused).
2. Runs in progress get up to `timeout` seconds to finish (Ctrl-C stops the wait).
3. What is still open has its flow process on this host stopped first (Prefect's engine
   answers SIGTERM by forcing its run to Crashed), then is set Cancelled through the API, its
   subflow runs too; Prefect frees the slot each held, and any slot still taken with no open run
   is given back, so the job's next run is neither queued nor cancelled as overlapping. Only
   then do the worker and the server stop.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import requests

from vectorflow.cli.stranded import (
    POOL,
    end_run,
    free_slots,
    leaked_slots,
    open_runs,
    pool_deployments,
    post,
    runs_flow_run,
)


def paused_file(run_dir: Path) -> Path:
    """Where `down` records what it paused, for `up` to resume."""
    return run_dir / "paused-by-down.json"


def pause(api: str) -> dict:
    """Pause the pool's active scheduled deployments and the pool; what was paused."""
    names = []
    for d in pool_deployments(api):
        if d.get("schedules") and not d.get("paused"):
            post(api, f"/deployments/{d['id']}/pause_deployment", {})
            names.append(d["name"])
    pool = requests.get(f"{api}/work_pools/{POOL}", timeout=30).json()
    if not pool.get("is_paused"):
        requests.patch(f"{api}/work_pools/{POOL}", json={"is_paused": True}, timeout=30)
    return {"deployments": names, "pool": not pool.get("is_paused")}


def resume(api: str, paused: dict) -> list[str]:
    """Resume what `pause` paused; the deployments resumed."""
    if paused.get("pool"):
        requests.patch(f"{api}/work_pools/{POOL}", json={"is_paused": False}, timeout=30)
    by_name = {d["name"]: d for d in pool_deployments(api)}
    names = [n for n in paused.get("deployments", []) if n in by_name]
    for name in names:
        post(api, f"/deployments/{by_name[name]['id']}/resume_deployment", {})
    return names


def resume_recorded(api: str, run_dir: Path) -> list[str]:
    """Resume what the last `down` paused (recorded beside the stack); the deployments."""
    record = paused_file(run_dir)
    try:
        paused = json.loads(record.read_text())
    except (OSError, ValueError):
        return []
    names = resume(api, paused)
    record.unlink(missing_ok=True)
    return names


def _wait_for_open_runs(api: str, timeout_s: float, say: Callable[[str], None]) -> list[dict]:
    """Wait up to `timeout_s` for the pool's open runs to end; those still open."""
    deployments = pool_deployments(api)
    waiting = open_runs(api, deployments)
    if waiting:
        names = ", ".join(repr(r["name"]) for r in waiting)
        say(f"waiting up to {timeout_s:g} s for {len(waiting)} run(s) in progress: {names}")
    deadline = time.monotonic() + timeout_s
    try:
        while waiting and time.monotonic() < deadline:
            time.sleep(1)
            waiting = open_runs(api, deployments)
    except KeyboardInterrupt:
        say("interrupted: stopping the runs in progress now")
        waiting = open_runs(api, deployments)
    return waiting


def stop_process(run: dict, grace_s: float = 10.0) -> None:
    """Stop the flow process of `run` if it runs on this host (its process group: SIGTERM,
    then SIGKILL after `grace_s`)."""
    pid = run.get("infrastructure_pid")
    if not pid or not runs_flow_run(pid, run["id"]):
        return
    os.killpg(int(pid), signal.SIGTERM)  # the worker starts each run in a session of its own
    deadline = time.monotonic() + grace_s
    while runs_flow_run(pid, run["id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if runs_flow_run(pid, run["id"]):
        os.killpg(int(pid), signal.SIGKILL)


def drain(api: str, timeout_s: float, say: Callable[[str], None] = print) -> dict:
    """Pause, wait up to `timeout_s`, stop what is still open, free leaked slots (see the
    module docstring); what was paused."""
    paused = pause(api)
    if paused["deployments"]:
        say(f"paused the schedules of {', '.join(paused['deployments'])}")
    for run in _wait_for_open_runs(api, timeout_s, say):
        still = f"still {run['state']['name']} after {timeout_s:g} s"
        stop_process(run)
        end_run(api, run, f"stopped by `vectorflow down`: {still}", cancelled=True)
        say(f"cancelled run {run['name']!r} ({still})")
    for deployment, (limit, slots) in leaked_slots(api).items():
        free_slots(api, limit, slots)
        say(f"freed {slots} concurrency slot(s) of {deployment} that no open run held")
    return paused
