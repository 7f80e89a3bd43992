"""`vectorflow up` / `down` / `worker` / `reconcile`: the whole system on one machine.

`up` starts a Prefect server on 127.0.0.1 (analytics off), creates the process work pool, deploys
prefect.yaml, resumes what the last `down` paused, ends the runs no live process owns
(`vectorflow.cli.stranded`), serves `<data dir>/reports` on 127.0.0.1 (unless the settings name
a reports URL) and starts a worker (`--workers N`: N of them on the pool), then prints the UI's
URL. The server keeps its database where `PREFECT_API_DATABASE_CONNECTION_URL` says (PostgreSQL
for many workers), else in SQLite under PREFECT_HOME. What it started is recorded in
`<data dir>/run/stack.json`; `down` (or Ctrl-C on a foreground `up`) drains the runs in progress
(`vectorflow.cli.drain`), then stops exactly those processes and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from vectorflow.cli import INVALID, OK, command_parser, prefect_environment
from vectorflow.cli.drain import drain, paused_file, resume_recorded
from vectorflow.cli.notifications import configure_notifications, webhook_host
from vectorflow.cli.stranded import POOL, reconcile
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput

#: What the command line of each process `up` starts contains (a recycled pid is not ours).
OURS = (b"prefect", b"vectorflow", b"http.server")


def repo_root() -> Path:
    """The checkout holding prefect.yaml and flows/ (deployments run from there)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "prefect.yaml").exists() or not (root / "flows").is_dir():
        raise InvalidInput(
            f"no prefect.yaml next to {root}: `vectorflow up` runs from a clone of the repository"
        )
    return root


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def stack_environment(
    api_url: str, data_dir: Path, root: Path, reports_url: str | None = None
) -> dict[str, str]:
    """Environment of the server, the deploy step and the worker (and so of every flow run)."""
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        VECTORFLOW_HOME=str(root),
        VECTORFLOW_DATA_DIR=str(data_dir),
    )
    if reports_url:
        env["VECTORFLOW_REPORTS_URL"] = reports_url
    return env


def _wait_healthy(api_url: str, server: subprocess.Popen, timeout_s: float) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {server.returncode}")
        try:
            if requests.get(f"{api_url}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the Prefect server at {api_url} was not healthy after {timeout_s:.0f} s")


def _start(cmd: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as sink:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(mark in cmdline for mark in OURS)


def server_database(env: dict[str, str]) -> str:
    """The Prefect server's database as `up` prints it (a password in the URL masked)."""
    url = env.get("PREFECT_API_DATABASE_CONNECTION_URL") or env.get(
        "PREFECT_SERVER_DATABASE_CONNECTION_URL"
    )
    if not url:
        return "SQLite under PREFECT_HOME (set PREFECT_API_DATABASE_CONNECTION_URL for PostgreSQL)"
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def stack_file(data_dir: Path) -> Path:
    """Where `up` records what it started."""
    return data_dir / "run" / "stack.json"


def read_stack(state_file: Path) -> dict:
    """What `up` recorded ({} when nothing is, or the file cannot be read)."""
    try:
        return json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}


def live_stack_api(data_dir: Path) -> str | None:
    """The API URL of the `vectorflow up` stack of `data_dir`, if its server is running."""
    stack = read_stack(stack_file(data_dir))
    pid = stack.get("server_pid")
    return stack.get("api_url") if pid and _alive(pid) else None


def stop_stack(state_file: Path) -> list[int]:
    """Stop the processes `up` recorded (only those, and only if they are still ours)."""
    stack = read_stack(state_file)
    if not stack:
        return []
    stopped = []
    workers = stack.get("worker_pids") or [stack.get("worker_pid")]  # older files: one worker
    for pid in (*workers, stack.get("reports_pid"), stack.get("server_pid")):
        if pid and _alive(pid):
            os.killpg(pid, signal.SIGTERM)  # its own session: the server's children go too
            for _ in range(100):
                if not _alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
            stopped.append(pid)
    state_file.unlink(missing_ok=True)
    return stopped


def _serve_reports(settings, port: int, env: dict, run_dir: Path) -> subprocess.Popen:
    """Serve `<data dir>/reports` over HTTP on 127.0.0.1:`port` (Python's static file server)."""
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
           "--directory", str(settings.reports_dir)]  # fmt: skip
    return _start(cmd, env, run_dir / "reports.log", settings.reports_dir)


def _start_workers(args, state: dict, state_file: Path, env: dict, run_dir: Path) -> None:
    """`vectorflow worker` N times (each reconciles its own runs, then is a Prefect worker)."""
    for n in range(1, args.workers + 1):
        name = f"{socket.gethostname()}-{n}"  # several workers on one pool: each its own name
        log = run_dir / ("worker.log" if args.workers == 1 else f"worker-{n}.log")
        limit = ["--limit", str(args.worker_limit)] if args.worker_limit else []
        cmd = [sys.executable, "-m", "vectorflow.cli", "worker", "--name", name, *limit]
        state["worker_pids"].append(_start(cmd, env, log, repo_root()).pid)
        state_file.write_text(json.dumps(state))


def _deploy(api_url: str, env: dict, root: Path, run_dir: Path) -> list[str]:
    """Pool and deployments; resume what the last `down` paused, end stranded runs: what was
    done, line by line."""
    subprocess.run(_prefect("work-pool", "create", POOL, "--type", "process", "--overwrite"),
                   env=env, cwd=root, check=True, capture_output=True)  # fmt: skip
    deployed = subprocess.run(_prefect("--no-prompt", "deploy", "--all"), env=env, cwd=root,
                              capture_output=True, text=True)  # fmt: skip
    if deployed.returncode != 0:
        raise RuntimeError(f"prefect deploy failed:\n{deployed.stdout[-3000:]}")
    done = []
    if resumed := resume_recorded(api_url, run_dir):
        done.append(f"resumed the schedules `down` paused: {', '.join(resumed)}")
    reconcile(api_url, done.append)
    return done


def up(args: argparse.Namespace) -> int:
    """Start server, pool, deployments, reports and worker; print the UI URL."""
    import requests  # only here: `vectorflow --help` stays light

    settings = load_settings(args.data_dir)
    root = repo_root()
    run_dir = settings.data_dir / "run"
    state_file = stack_file(settings.data_dir)
    if stack := read_stack(state_file):
        if _alive(stack.get("server_pid", 0)):
            print(f"already up: {stack['ui_url']} (stop it with `vectorflow down`)")
            return INVALID
    api_url = f"http://127.0.0.1:{args.port}/api"
    reports_url = settings.reports_url or f"http://127.0.0.1:{args.reports_port}"
    env = stack_environment(api_url, settings.data_dir, root, reports_url)
    server = _start(_prefect("server", "start", "--host", "127.0.0.1", "--port", str(args.port)),
                    env, run_dir / "server.log", root)
    state = {"server_pid": server.pid, "worker_pids": [], "api_url": api_url,
             "ui_url": api_url.removesuffix("/api"), "reports_url": reports_url}
    run_dir.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state))
    try:
        if not settings.reports_url:
            state["reports_pid"] = _serve_reports(settings, args.reports_port, env, run_dir).pid
            state_file.write_text(json.dumps(state))
        _wait_healthy(api_url, server, args.timeout)
        done = _deploy(api_url, env, root, run_dir)
        _notifications(settings.webhook_url, api_url)
        _start_workers(args, state, state_file, env, run_dir)
    except (RuntimeError, subprocess.CalledProcessError, requests.RequestException) as exc:
        stop_stack(state_file)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    notices = (f"failed and crashed runs are posted to {webhook_host(settings.webhook_url)}"
               if settings.webhook_url else "no webhook for failed runs (VECTORFLOW_WEBHOOK_URL)")
    print(f"VectorFlow is up. Prefect UI: {state['ui_url']}\n"
          f"  backtest reports: {reports_url}/\n"
          f"  {args.workers} worker(s) on the {POOL!r} pool; server database: "
          f"{server_database(env)}\n"
          f"  data dir {settings.data_dir}; logs in {run_dir}\n  {notices}\n"
          + "".join(f"  {line}\n" for line in done)
          + "  stop it with `vectorflow down`" + ("" if args.detach else " or Ctrl-C"))
    if args.detach:
        return OK
    try:
        while server.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        _drain_quietly(api_url, args.drain_timeout, settings.data_dir / "run")
    stop_stack(state_file)
    return OK


def _notifications(webhook_url: str | None, api_url: str) -> None:
    """The failed-run webhook automation (created, updated, or removed when no URL is set)."""
    prefect_environment()
    try:
        configure_notifications(webhook_url, api_url)
    except Exception as exc:  # noqa: BLE001 - any API failure stops `up` with one message
        raise RuntimeError(f"could not set up notifications: {type(exc).__name__}: {exc}") from exc


def _drain_quietly(api_url: str, timeout_s: float, run_dir: Path) -> None:
    """Drain (`vectorflow.cli.drain`) and record what was paused; an API that does not answer
    has nothing to drain."""
    import requests  # only here: `vectorflow --help` stays light

    try:
        paused = drain(api_url, timeout_s)
    except requests.RequestException as exc:
        print(f"Prefect API {api_url} does not answer ({type(exc).__name__}): nothing drained")
        return
    paused_file(run_dir).write_text(json.dumps(paused))


def down(args: argparse.Namespace) -> int:
    """Drain the runs in progress, then stop what `vectorflow up` started."""
    settings = load_settings(args.data_dir)
    state_file = stack_file(settings.data_dir)
    stack = read_stack(state_file)
    if stack and _alive(stack.get("server_pid", 0)):
        _drain_quietly(stack["api_url"], args.timeout, settings.data_dir / "run")
    stopped = stop_stack(state_file)
    print(f"stopped {len(stopped)} process(es)" if stopped else "nothing was running")
    return OK


def _api_url(data_dir: str | None) -> str:
    """The Prefect API: PREFECT_API_URL, else the one `vectorflow up` started."""
    api = os.environ.get("PREFECT_API_URL") or read_stack(
        stack_file(load_settings(data_dir).data_dir)
    ).get("api_url")
    if not api:
        raise InvalidInput("no Prefect API: set PREFECT_API_URL, or start one with `vectorflow up`")
    return api


def worker(args: argparse.Namespace) -> int:
    """End the runs no live process owns, then become a Prefect worker on the pool."""
    import requests  # only here: `vectorflow --help` stays light

    api = _api_url(args.data_dir)
    try:
        reconcile(api, lambda line: print(line, flush=True))
    except requests.RequestException as exc:
        print(f"could not reconcile runs ({type(exc).__name__}); starting the worker anyway")
    limit = ["--limit", str(args.limit)] if args.limit else []
    sys.stdout.flush()
    os.execv(sys.executable, _prefect("worker", "start", "--pool", POOL, "--name", args.name,
                                      *limit))  # fmt: skip
    return OK  # not reached: the process is the worker now


def reconcile_command(args: argparse.Namespace) -> int:
    """End the runs no live process owns and free the slots no open run holds."""
    api = _api_url(args.data_dir)
    if not reconcile(api):
        print("nothing to clear: every open run has a live process, every slot an open run")
    return OK


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def add_parsers(sub) -> None:
    """The up and down commands."""
    up_parser = command_parser(
        sub, "up", "Start a local Prefect server, the work pool, the deployments and a worker.",
        "vectorflow up --port 4200",
    )
    up_parser.add_argument("--port", type=int, default=4200, help="Prefect server port")
    up_parser.add_argument("--detach", action="store_true",
                           help="return once everything is up (stop with `vectorflow down`)")
    up_parser.add_argument("--workers", type=_positive, default=1,
                           help="process workers to start on the pool (default 1)")
    up_parser.add_argument("--worker-limit", type=_positive, default=None,
                           help="flow runs each worker runs at once (default: no limit)")
    up_parser.add_argument("--timeout", type=float, default=120,
                           help="seconds to wait for the server to become healthy")
    up_parser.add_argument("--reports-port", type=int, default=4201,
                           help="port serving <data dir>/reports on 127.0.0.1 (default 4201; "
                           "not used when [reports] url or VECTORFLOW_REPORTS_URL is set)")
    up_parser.add_argument("--drain-timeout", type=_seconds, default=60,
                           help="on Ctrl-C, seconds runs in progress get to finish (default 60)")
    up_parser.set_defaults(run=up)
    down_parser = command_parser(
        sub, "down", "Drain the runs in progress, then stop what `vectorflow up` started.",
        "vectorflow down --timeout 120",
    )
    down_parser.add_argument("--timeout", type=_seconds, default=60,
                             help="seconds runs in progress get to finish before they are "
                             "cancelled (default 60)")
    down_parser.set_defaults(run=down)
    worker_parser = command_parser(
        sub, "worker", "End the runs no live process owns, then run a Prefect worker on the "
        "vectorflow pool (PREFECT_API_URL).", 'vectorflow worker --name "$(hostname)"',
    )
    worker_parser.add_argument("--name", default=socket.gethostname(),
                               help="worker name, starting with this host's name (default: it)")
    worker_parser.add_argument("--limit", type=_positive, default=None,
                               help="flow runs it runs at once (default: no limit)")
    worker_parser.set_defaults(run=worker)
    reconcile_parser = command_parser(
        sub, "reconcile", "End the runs no live process owns (Crashed) and free the "
        "concurrency slots no open run holds.", "vectorflow reconcile",
    )
    reconcile_parser.set_defaults(run=reconcile_command)
