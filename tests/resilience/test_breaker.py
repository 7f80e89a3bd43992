"""Circuit breakers: open after N transient failures, fail fast everywhere, probe, close."""

from __future__ import annotations

import json
import time

import pytest

import vectorflow.resilience.guard as guard_module
from tests.resilience.conftest import BINANCE, BYBIT, KLINES, run_backfill
from vectorflow.cli import main
from vectorflow.errors import CircuitOpen, ExchangeUnavailable
from vectorflow.pipelines.candles import ingest_series
from vectorflow.resilience.breaker import Breakers
from vectorflow.resilience.store import StateStore
from vectorflow.units import Unit

COOLDOWN = 300  # exchange seconds: 3 s at the tests' time scale


def _notes(exc: BaseException) -> str:
    return " ".join(getattr(exc, "__notes__", []))


def test_breaker_opens_fails_fast_everywhere_then_probes_and_closes(lab, baseline, capsys):
    # while the checks of the open state run (processes start slowly on a busy machine), the
    # cool-down is endless; the probe phase then reads the real one from the same state.db
    settings = lab.settings(breaker_failures=3, breaker_cooldown_seconds=100_000)
    lab.sim.fault("error", KLINES["binance"], status=503, times=None)  # binance klines are down
    since, now = lab.since(), lab.sim.now_ms()

    # three transient failures in a row open it; the unit that tried fails with the real error
    with pytest.raises(ExchangeUnavailable) as failed:
        lab.ingest(BINANCE, settings)
    assert "fetch_candles/binance breaker opened after 3 tries" in _notes(failed.value)
    assert len(lab.klines("binance")) == 3

    # open: every call fails fast without a request -- here, in another process, after a restart
    eth = Unit("binance", "spot", "ETH/USDT", "15m")
    report = ingest_series(eth, since, now, settings)
    assert report.status == "skipped"
    assert "circuit open for fetch_candles on binance" in report.error
    other = run_backfill(lab.env(), since, now, ["binance/spot/SOL/USDT/15m"])
    out, err = other.communicate(timeout=60)
    assert json.loads(out.splitlines()[-1])["status"] == "skipped", err
    guard_module._guards.clear()  # a restarted process: the state comes back from state.db
    assert ingest_series(eth, since, now, settings).status == "skipped"
    assert len(lab.klines("binance")) == 3
    assert lab.ingest(BYBIT, settings).status == "ok"  # other targets are not affected

    assert main(["--data-dir", str(lab.data_dir), "status"]) == 4  # broken: a breaker is open
    shown = capsys.readouterr().out
    assert "fetch_candles  binance  open" in shown
    assert "binance_spot" in shown and "bybit" in shown

    # after the cool-down one probe goes through; it fails: open again, for another cool-down
    settings = lab.settings(breaker_failures=3, breaker_cooldown_seconds=COOLDOWN)
    time.sleep(COOLDOWN * lab.scale)
    with pytest.raises(ExchangeUnavailable):
        lab.ingest(BINANCE, settings)
    assert len(lab.klines("binance")) == 4
    assert ingest_series(eth, since, now, settings).status == "skipped"

    # the exchange is back: after the next cool-down the probe succeeds and closes it
    lab.sim.clear_faults()
    time.sleep(COOLDOWN * lab.scale)
    assert lab.ingest(BINANCE, settings).status == "ok"
    assert [r for r in lab.rows() if r[0] == "binance"] == baseline["rows"]["binance"]
    moves = [
        (m[3], m[4]) for m in reversed(guard_module.guard_for(settings).breakers.transitions())
    ]
    assert moves == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_half_open_lets_exactly_one_probe_through(data_dir):
    now = [1000.0]
    breakers = Breakers(StateStore(data_dir / "state.db", clock=lambda: now[0]), 2, 10.0, 5.0)
    breakers.failure("playbook", "grok", "timeout")
    assert breakers.admit("playbook", "grok") is False  # one failure: still closed
    breakers.failure("playbook", "grok", "timeout")
    with pytest.raises(CircuitOpen, match="until"):
        breakers.admit("playbook", "grok")
    now[0] += 10
    assert breakers.admit("playbook", "grok") is True  # the probe
    with pytest.raises(CircuitOpen, match="probing"):
        breakers.admit("playbook", "grok")  # anyone else, while it is out
    now[0] += 6  # the probe's process died: its lease runs out, another may probe
    assert breakers.admit("playbook", "grok") is True
    breakers.success("playbook", "grok")
    assert breakers.admit("playbook", "grok") is False
    (state,) = breakers.states()
    assert (state.state, state.failures) == ("closed", 0)
