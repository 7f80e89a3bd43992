"""One series' playbook against scripted answers: statuses, what is stored, cache, budget, skips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.playbooks.conftest import (
    AS_OF,
    CANARY,
    FAST_RETRY,
    HOUR,
    UNIT,
    guard_of,
    lake_of,
    llm_config,
    make_candles,
)
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.budget import TokenBudget, estimate_tokens
from vectorflow.playbooks.client import GrokClient
from vectorflow.playbooks.context import build_inputs
from vectorflow.playbooks.contract import SYSTEM_PROMPT, Entry, Playbook, Risk, Target
from vectorflow.playbooks.prompt import build_payload, payload_text
from vectorflow.playbooks.rules import RULES_VERSION
from vectorflow.playbooks.store import read_playbooks, write_playbooks
from vectorflow.playbooks.validate import MarketFrame, check_playbook
from vectorflow.playbooks.writer import WriteContext, playbooks_for
from vectorflow.settings.playbooks import PlaybookSettings
from vectorflow.sim.llm import Reply
from vectorflow.units import Unit

CANDLES = make_candles()
LAST = float(CANDLES["close"].iloc[-1])
SIGNALS = {
    "as_of_ms": AS_OF,
    "regime": "trend_up|normal_vol",
    "adx": 27.5,
    "tpo_poc": LAST - 40,
    "tpo_vah": LAST + 60,
    "tpo_val": LAST - 90,
    "last_trap_type": "bear_trap",
    "last_trap_time": AS_OF - 3 * HOUR,
    "last_trap_level": LAST - 70,
}


def inputs(unit: Unit = UNIT, candles=CANDLES, signals=SIGNALS):
    return build_inputs(unit, candles, AS_OF, signals)


def context(
    llm, lake: Storage, *, budget: int = 1_000_000, guard=None, run_id: str = "run-1", **config
) -> WriteContext:
    cfg = llm_config(llm, **config)
    client = GrokClient(cfg, CANARY, guard or guard_of(lake.data_dir), FAST_RETRY)
    return WriteContext(cfg, lake, run_id, client, TokenBudget(budget))


def run(ctx: WriteContext, given=None):
    """Write and store one series' playbooks; return them as read back from the lake."""
    records = playbooks_for(given or inputs(), ctx)
    write_playbooks(ctx.lake, records)
    return read_playbooks(ctx.lake, [r.playbook_id for r in records])


def assert_valid_or_empty(record, given) -> None:
    """A stored row either passes every check again, or carries no direction and no levels."""
    if record.bias in ("long", "short"):
        playbook = Playbook(
            bias=record.bias,
            confidence=record.confidence,
            entry=Entry(
                type=record.entry_type,
                zone_low=record.entry_low,
                zone_high=record.entry_high,
                trigger=record.entry_trigger,
            ),
            stop_loss=record.stop_loss,
            targets=[Target(price=p, share=s) for p, s in record.targets],
            invalidation=record.invalidation,
            risk=Risk(max_risk=record.max_risk, rr_ratio=record.rr_ratio),
            rationale=record.rationale,
            levels_used=list(record.levels_used),
        )
        frame = MarketFrame(given.last_close, given.atr, given.levels)
        check_playbook(playbook, frame, max_atr_distance=5.0)
    elif record.bias != "no_trade":
        assert record.bias is None and record.entry_low is None and record.stop_loss is None
        assert record.targets == () and record.confidence is None


SCRIPTS = [
    (["valid"], "ok", 1),
    (["no_trade"], "ok", 1),
    (["wrong_order", "valid"], "repaired", 2),
    (["not_json", "valid"], "repaired", 2),
    (["schema_break", "schema_break"], "abstained", 2),
    (["instruction", "wrong_order"], "abstained", 2),
    (["cut_off", "cut_off"], "abstained", 2),
    (["rate_limited", "valid"], "ok", 2),
    (["server_error"] * 3, "error", 3),
    (["unauthorized"], "error", 1),
]


@pytest.mark.parametrize("script,status,requests", SCRIPTS, ids=["-".join(s[0]) for s in SCRIPTS])
def test_each_scripted_answer_gets_its_status_and_nothing_invalid_is_stored(
    llm, data_dir, script, status, requests
):
    llm.script(*script)
    given = inputs()
    records = run(context(llm, lake_of(data_dir)), given)
    grok = records[0]
    assert (grok.source, grok.status) == ("grok", status)
    assert len(llm.chat_requests) == requests
    assert grok.requests == requests
    faults = ("rate_limited", "server_error", "unauthorized")  # no answer text
    assert len(grok.raw_answers) == len([s for s in script if s not in faults])
    for record in records:
        assert_valid_or_empty(record, given)
    if status == "abstained":
        assert grok.bias is None and "first answer:" in grok.error
    if status == "error":  # the rule-based playbook is written beside the error
        assert [r.source for r in records] == ["grok", "rules"] and records[1].status == "ok"
        assert CANARY not in grok.error
    else:
        assert len(records) == 1


def test_the_repair_request_quotes_the_error_and_the_first_answer(llm, data_dir):
    llm.script("wrong_order", "valid")
    run(context(llm, lake_of(data_dir)))
    first, repair = (r["json"]["messages"] for r in llm.chat_requests)
    assert repair[:2] == first
    assert repair[2]["role"] == "assistant" and '"bias"' in repair[2]["content"]
    assert repair[3]["role"] == "user" and "levels out of order for a long" in repair[3]["content"]
    assert first[0]["content"] == SYSTEM_PROMPT
    assert first[1]["content"] == payload_text(build_payload(inputs()))


def test_a_slow_answer_past_the_timeout_ends_in_error_after_the_retries(llm, data_dir):
    llm.script(*[Reply(delay=1.5)] * 3)
    records = run(context(llm, lake_of(data_dir), read_timeout_seconds=0.3))
    assert records[0].status == "error" and "timed out" in records[0].error
    assert len(llm.chat_requests) == 3


def test_injected_text_is_stored_as_data_and_nothing_else_happens(llm, data_dir, tmp_path):
    llm.script("injection")
    lake = lake_of(data_dir)
    (record,) = run(context(llm, lake))
    assert record.status == "ok"
    assert "DROP TABLE playbooks" in record.rationale and "rm -rf" in record.rationale
    assert read_playbooks(lake, [record.playbook_id])[0].rationale == record.rationale
    everything = [p.name for p in tmp_path.rglob("*")] + [p.name for p in Path("/tmp").glob("*")]
    assert "pwned" not in everything


def test_the_same_inputs_are_answered_from_the_store(llm, data_dir):
    lake = lake_of(data_dir)
    llm.script("wrong_order", "valid")
    (first,) = run(context(llm, lake))
    (second,) = run(context(llm, lake, run_id="run-2"))
    assert len(llm.chat_requests) == 2  # the second run asked nothing
    assert second.cached and not first.cached
    assert second.status == "repaired" and second.inputs_hash == first.inputs_hash
    assert (second.bias, second.targets, second.stop_loss) == (
        first.bias,
        first.targets,
        first.stop_loss,
    )
    assert second.tokens_in == second.tokens_out == 0 and second.playbook_id != first.playbook_id
    (other_model,) = run(context(llm, lake, run_id="run-3", model="grok-4-1-fast-reasoning"))
    assert not other_model.cached and len(llm.chat_requests) == 3


def test_the_token_budget_stops_new_requests(llm, data_dir):
    text = payload_text(build_payload(inputs()))
    one_request = estimate_tokens(SYSTEM_PROMPT, text)
    ctx = context(llm, lake_of(data_dir), budget=one_request + 10)
    units = [Unit("binance", "spot", s, "1h") for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT")]
    statuses = [run(ctx, inputs(unit))[0].status for unit in units]
    assert statuses == ["ok", "skipped_budget", "skipped_budget"]
    assert len(llm.chat_requests) == 1
    assert 0 < ctx.budget.spent <= ctx.budget.limit and ctx.budget.reserved == 0


def test_a_repair_the_budget_cannot_pay_for_abstains(llm, data_dir):
    text = payload_text(build_payload(inputs()))
    llm.script("wrong_order", "valid")
    (record,) = run(context(llm, lake_of(data_dir), budget=estimate_tokens(SYSTEM_PROMPT, text)))
    assert record.status == "abstained" and "no budget left for a repair" in record.error
    assert len(llm.chat_requests) == 1


def test_stale_or_gappy_candles_skip_the_request(llm, data_dir):
    ctx = context(llm, lake_of(data_dir))
    old = build_inputs(UNIT, make_candles(end_ms=AS_OF - 3 * HOUR), AS_OF, {})
    gappy = build_inputs(UNIT, CANDLES.drop(index=len(CANDLES) - 10), AS_OF, {})
    (stale,) = run(ctx, old)
    (gaps,) = run(ctx, gappy)
    assert stale.status == gaps.status == "skipped_stale"
    assert "more than two timeframes" in stale.error and "1 of the last 48" in gaps.error
    assert llm.chat_requests == [] and stale.bias is None


def test_without_a_key_the_rules_write_the_playbook(data_dir):
    ctx = WriteContext(PlaybookSettings(), lake_of(data_dir), "run-1")
    (record,) = run(ctx)
    assert (record.source, record.status, record.model) == ("rules", "ok", RULES_VERSION)
    assert record.bias in ("long", "short", "no_trade") and record.prompt_version is None
    assert record.valid_until == AS_OF + 48 * HOUR  # as_of + the horizon
    again = run(ctx)  # the same inputs give the same rule-based row, not a second one
    assert again[0].playbook_id == record.playbook_id


def test_an_open_breaker_sends_nothing_and_the_rules_answer(llm, data_dir):
    guard = guard_of(data_dir, breaker_failures=1, breaker_cooldown_seconds=300)
    ctx = context(llm, lake_of(data_dir), guard=guard)
    llm.script(*["server_error"] * 3)
    failed = run(ctx)
    assert [r.status for r in failed] == ["error", "ok"]  # the failure opens the breaker
    asked = len(llm.chat_requests)
    after = run(ctx, inputs(Unit("bybit", "spot", "BTC/USDT", "1h")))
    assert [(r.source, r.status) for r in after] == [("rules", "ok")]
    assert len(llm.chat_requests) == asked  # nothing reached the server
    assert [(b.kind, b.target, b.state) for b in guard.breakers.states()] == [
        ("playbook", "grok", "open")
    ]


def test_payload_is_compact_json_of_numbers_and_labels():
    text = payload_text(build_payload(inputs()))
    payload = json.loads(text)
    assert text == json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert payload["regime"]["regime"] == "trend_up|normal_vol"
    assert payload["trap"] == {
        "type": "bear_trap",
        "time": "2026-05-28T17:00:00Z",
        "level": float(f"{LAST - 70:.8g}"),
    }
    assert math.isclose(payload["market"]["last_price"], LAST, rel_tol=1e-7)
    assert set(payload) >= {"series", "as_of", "market", "levels", "regime", "trap"}
    # sections not read say so rather than vanish
    for name in ("order_book", "cross_exchange", "derivatives", "higher_timeframe"):
        assert payload[name] == {"unavailable": "not read"}
    assert payload["horizon"] == {"bars": 48, "valid_until": "2026-05-30T20:00:00Z"}
