"""Ctrl-C and SIGTERM during a ban or a Retry-After: a real `vectorflow` process ends at once.

Each case starts `vectorflow ingest` against the time-scaled simulator, lets the exchange ban
it (or answer 429 with a long Retry-After), signals it while it waits, and checks that it ended
within 2 s with 130 / 143 and one line saying what it waited for; that the lake holds a clean
prefix of the fault-free rows (no temp file, nothing twice); and that a rerun resumes to the
fault-free lake.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import run_cli
from tests.resilience.conftest import KLINES, REPO
from vectorflow import interrupt
from vectorflow.errors import Interrupted
from vectorflow.timeframes import ms_to_iso

WAIT = 700  # exchange seconds of the ban or the Retry-After: 7 s at the tests' time scale
UNTIL = r"\d\d:\d\d:\d\d UTC"
CASES = {
    "SIGINT during a ban": (signal.SIGINT, 130, dict(kind="ban"), "banned"),
    "SIGTERM during a ban": (signal.SIGTERM, 143, dict(kind="ban"), "banned"),
    "SIGINT during Retry-After": (signal.SIGINT, 130, dict(kind="rate_limit"), "rate limited"),
}


def _ingest(lab, api_url: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORFLOW_")}
    env |= lab.env() | {"PREFECT_API_URL": api_url}
    return subprocess.Popen(
        [sys.executable, "-m", "vectorflow.cli", "ingest", *_args(lab)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the fault was never reached"
        time.sleep(0.05)


@pytest.mark.parametrize("name", CASES)
def test_a_signal_while_waiting_ends_the_command_at_once_and_a_rerun_resumes(
    prefect_api, lab, baseline, name
):
    signum, code, fault, waited = CASES[name]
    lab.settings()  # the settings file with the time scale
    lab.sim.fault(path=KLINES["binance"], after=1, retry_after=WAIT, **fault)
    worker = _ingest(lab, prefect_api)
    _wait_until(lambda: any(r["fault"] for r in lab.klines("binance")), 120)
    time.sleep(0.5)  # the client has taken the exchange's word and waits now

    started = time.monotonic()
    worker.send_signal(signum)
    _, err = worker.communicate(timeout=60)
    took = time.monotonic() - started

    assert worker.returncode == code, err
    assert took < 2.0, f"{took:.2f} s"
    assert "Traceback" not in err
    line = f"binance: {waited} until {UNTIL}; stopped while waiting — the next run resumes"
    assert re.fullmatch(line, err.strip().splitlines()[-1]), err
    assert len(lab.klines("binance")) == 2  # the page before the fault, the fault: nothing since
    landed = lab.rows()
    assert landed == baseline["rows"]["binance"][: len(landed)]  # what landed is whole
    assert not list((lab.data_dir / "lake").rglob("*.tmp"))

    rerun = run_cli(["ingest", *_args(lab)], lab.env(), prefect_api)
    assert rerun.returncode == 0, rerun.stderr
    assert lab.rows() == baseline["rows"]["binance"]


def _args(lab) -> list[str]:
    return [
        "--exchange", "binance", "--market", "spot", "--symbol", "BTC/USDT",
        "--timeframe", "15m", "--since", ms_to_iso(lab.since()),
    ]  # fmt: skip


def test_every_wait_wakes_within_milliseconds_of_a_stop_and_says_what_waited():
    woke: list[tuple[str, float]] = []

    def wait(what: str) -> None:
        try:
            interrupt.sleep(60, what)
        except Interrupted as exc:
            woke.append((str(exc), time.monotonic()))

    waits = ["binance: banned until 12:03:00 UTC", "grok: rate limited until 12:01:00 UTC"]
    threads = [threading.Thread(target=wait, args=(w,)) for w in waits]
    try:
        for t in threads:
            t.start()
        time.sleep(0.2)
        stopped = time.monotonic()
        interrupt.request_stop(signal.SIGTERM)
        for t in threads:
            t.join(5)
        assert sorted(w for w, _ in woke) == sorted(f"{w}; stopped while waiting" for w in waits)
        assert max(t for _, t in woke) - stopped < 0.5
        assert interrupt.stop_signal() == signal.SIGTERM
        line = interrupt.stopped_line()
        assert line.endswith("; stopped while waiting — the next run resumes")
        assert all(w in line for w in waits)
        with pytest.raises(Interrupted):
            interrupt.check("the next page")  # nothing new starts after a stop
    finally:
        interrupt.reset()
    interrupt.sleep(0.01, "after a reset, waits wait again")
