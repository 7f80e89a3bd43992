"""Replays: the same playbooks as one-by-one runs, nothing after as_of, budget, cache, resume."""

from __future__ import annotations

import json

import pytest

from tests.playbooks.conftest import CANARY, FAST_RETRY, guard_of, lake_of, llm_config
from tests.playbooks.market_lake import (
    AS_OF_NOW,
    AS_OF_PAST,
    DAY,
    HOUR,
    PERP,
    TIMEFRAMES,
    copy_data_dir,
)
from vectorflow.errors import InvalidInput
from vectorflow.pipelines.playbooks import replay_result
from vectorflow.playbooks.budget import TokenBudget
from vectorflow.playbooks.client import GrokClient
from vectorflow.playbooks.replay import (
    estimate_series,
    replay_plan,
    replay_report,
    replay_series,
)
from vectorflow.playbooks.store import series_playbooks
from vectorflow.playbooks.writer import WriteContext, write_series_playbook
from vectorflow.settings.playbooks import PlaybookSettings
from vectorflow.units import Status, Unit

SPOT = Unit("bybit", "spot", "BTC/USDT", "1h")
#: what makes two playbooks the same, whichever run wrote them
SAME = (
    "playbook_id", "exchange", "market", "symbol", "timeframe", "as_of", "source", "status",
    "inputs_hash", "payload", "bias", "confidence", "entry_low", "entry_high", "stop_loss",
    "targets", "rr_ratio", "invalidation", "rationale", "levels_used", "level_prices",
    "valid_until", "tick_size", "last_price", "atr", "regime",
)  # fmt: skip


def _same(record) -> dict:
    return {name: getattr(record, name) for name in SAME}


def _rules_context(lake, run_id: str) -> WriteContext:
    return WriteContext(PlaybookSettings(), lake, run_id, timeframes=TIMEFRAMES)


@pytest.fixture
def lakes(market, tmp_path):
    """Two writable copies of the market lake: one replayed, one written one time at a time."""
    full, _ = market
    return tuple(lake_of(copy_data_dir(full, tmp_path / name)) for name in ("a", "b"))


def test_a_replay_equals_playbooks_written_one_by_one_with_as_of(lakes):
    replayed, single = lakes
    start = AS_OF_PAST - 2 * HOUR
    plan = replay_plan((PERP, SPOT), start, AS_OF_NOW, "1h", "rules")
    replay_id = plan.replay_id("unused")
    for unit in plan.units:
        counts = replay_series(unit, plan, _rules_context(replayed, replay_id))
        assert counts["rules ok"] == len(plan.as_ofs) == 6
        for as_of in plan.as_ofs:  # as `vectorflow playbook --as-of T` writes them
            write_series_playbook(unit, _rules_context(single, "one-run"), as_of_ms=as_of)
    for unit in plan.units:
        got = series_playbooks(replayed, unit, start, AS_OF_NOW, run_id=replay_id)
        expected = series_playbooks(single, unit, start, AS_OF_NOW)
        assert [_same(r) for r in got] == [_same(r) for r in expected]
        assert {json.loads(r.payload)["as_of"] for r in got} == {
            json.loads(r.payload)["as_of"] for r in expected
        }
        assert all(r.valid_until == r.as_of + 48 * HOUR for r in got)


def test_a_lake_truncated_at_as_of_gives_the_same_playbook(market, lakes, tmp_path):
    _, past = market
    replayed, _ = lakes
    truncated = lake_of(copy_data_dir(past, tmp_path / "past"))
    plan = replay_plan((PERP,), AS_OF_PAST - 2 * HOUR, AS_OF_NOW, "1h", "rules")
    replay_series(PERP, plan, _rules_context(replayed, "r"))
    (in_replay,) = [
        r for r in series_playbooks(replayed, PERP, AS_OF_PAST, AS_OF_PAST) if r.run_id == "r"
    ]
    (alone,) = write_series_playbook(PERP, _rules_context(truncated, "t"), as_of_ms=AS_OF_PAST)
    assert _same(in_replay) == _same(alone)
    payload = json.loads(alone.payload)
    assert "unavailable" not in payload["derivatives"]  # the sections were there to be cut
    assert payload["order_book"]["time"] < payload["as_of"]


def test_bad_replay_plans_name_the_bad_value():
    with pytest.raises(InvalidInput, match="'3x' is not a step"):
        replay_plan((PERP,), AS_OF_PAST, AS_OF_NOW, "3x", "rules")
    with pytest.raises(InvalidInput, match="not every time is a close of .*4h"):
        replay_plan((Unit("binance", "spot", "BTC/USDT", "4h"),), AS_OF_PAST, AS_OF_NOW,
                    "1h", "rules")
    with pytest.raises(InvalidInput, match="--to .* is before --from"):
        replay_plan((PERP,), AS_OF_NOW, AS_OF_PAST, "1h", "rules")
    with pytest.raises(InvalidInput, match="'gpt' is not one of rules, grok, both"):
        replay_plan((PERP,), AS_OF_PAST, AS_OF_NOW, "1h", "gpt")


def _grok_context(llm, lake, run_id: str, budget: int) -> WriteContext:
    config = llm_config(llm)
    client = GrokClient(config, CANARY, guard_of(lake.data_dir), FAST_RETRY)
    return WriteContext(config, lake, run_id, client, TokenBudget(budget), timeframes=TIMEFRAMES)


def test_a_grok_replay_keeps_to_its_budget_and_resumes_from_the_cache(llm, lakes):
    lake, _ = lakes
    plan = replay_plan((PERP,), AS_OF_NOW - 3 * HOUR, AS_OF_NOW, "1h", "grok")
    replay_id = plan.replay_id("grok-4.3")
    estimate = estimate_series(PERP, plan, _grok_context(llm, lake, replay_id, 0))
    assert estimate["requests"] == 4 and estimate["cached"] == 0
    assert estimate["tokens"] > 4 * 1024 and llm.chat_requests == []  # a dry run sends nothing
    per_request = estimate["tokens"] // 4
    first = replay_series(PERP, plan, _grok_context(llm, lake, replay_id, int(2.5 * per_request)))
    asked = len(llm.chat_requests)
    assert 1 <= asked < 4 and first["grok ok"] == asked
    assert first["grok skipped_budget"] == 4 - asked
    skipped = replay_result(PERP, first, "from", "to")  # its unit: not done, a rerun resumes
    assert (skipped.status, skipped.rows_written, skipped.unit.dataset) == (
        Status.SKIPPED, 4, "playbooks")
    assert skipped.error == f"token budget spent: {4 - asked} playbooks not written"
    left = estimate_series(PERP, plan, _grok_context(llm, lake, replay_id, 0))
    assert left["requests"] == 4 - asked  # the budget-skipped ones are still to do
    again = replay_series(PERP, plan, _grok_context(llm, lake, replay_id, 10**7))
    assert len(llm.chat_requests) == 4 and again["resumed"] == asked  # resumed, none re-asked
    assert replay_result(PERP, again, "from", "to").as_row()["resumed"] == asked
    other = plan.replay_id("grok-4.3") + "-b"  # another replay of the same inputs: the cache
    third = replay_series(PERP, plan, _grok_context(llm, lake, other, 10**7))
    assert len(llm.chat_requests) == 4 and third["grok ok"] == 4
    assert all(r.cached for r in series_playbooks(lake, PERP, plan.start_ms, plan.end_ms,
                                                   run_id=other))


def test_both_sources_are_compared_on_the_same_graded_times(llm, lakes):
    lake, _ = lakes
    start = (AS_OF_NOW - 6 * DAY) // (4 * HOUR) * (4 * HOUR)
    plan = replay_plan((PERP,), start, start + 2 * DAY, "4h", "both")
    replay_id = plan.replay_id("grok-4.3")
    counts = replay_series(PERP, plan, _grok_context(llm, lake, replay_id, 10**7))
    assert counts["rules ok"] == counts["grok ok"] == 13
    report = replay_report(lake, plan, replay_id, horizon=48)
    assert report["graded"] == 26 and report["outcomes_stored"] == 26
    rules, grok = report["comparison"]
    assert (rules["source"], grok["source"]) == ("rules", "grok")
    assert rules["playbooks"] == grok["playbooks"] == 13
    assert grok["directional"] == 13 and grok["no_trade"] == 0  # the fake LLM always trades
    assert rules["directional"] + rules["no_trade"] == 13
    if grok["avg_r_low"] is not None:
        assert grok["avg_r_low"] <= grok["avg_r"] <= grok["avg_r_high"]
    assert replay_report(lake, plan, replay_id, horizon=48)["outcomes_stored"] == 0


def test_a_replay_with_failed_requests_is_a_failed_unit():
    counts = {"rules ok": 3, "grok ok": 1, "grok error": 2, "resumed": 1}
    result = replay_result(PERP, counts, "2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z")
    assert result.status == Status.FAILED and result.rows_written == 6
    assert result.error == "2 requests failed (rerun the replay to retry them)"
    assert result.detail == {"resumed": 1, "playbooks": "2 grok error, 1 grok ok, 3 rules ok"}
