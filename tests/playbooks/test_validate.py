"""The contract and the checks by code: every rule rejects what breaks it, and only that."""

from __future__ import annotations

import json

import pytest

from vectorflow.playbooks.contract import Playbook, playbook_json_schema, response_format
from vectorflow.playbooks.validate import (
    MarketFrame,
    PlaybookRejected,
    check_playbook,
    computed_rr,
    parse_answer,
    validate_answer,
)

FRAME = MarketFrame(last_close=100.0, atr=2.0, levels={"tpo_poc": 99.0, "tpo_vah": 101.0})


def long_plan(**changes) -> dict:
    """Entry 99-101 (middle 100), stop 98 (risk 2), first target 104 (reward 4): R:R 2."""
    plan = {
        "bias": "long",
        "confidence": 70,
        "entry": {"type": "limit", "zone_low": 99.0, "zone_high": 101.0, "trigger": "retest"},
        "stop_loss": 98.0,
        "targets": [{"price": 104.0, "share": 0.5}, {"price": 106.0, "share": 0.5}],
        "invalidation": "close below 98",
        "risk": {"max_risk": 0.01, "rr_ratio": 2.0},
        "rationale": "value area low held",
        "levels_used": ["tpo_poc"],
    }
    for key, value in changes.items():
        plan[key] = value
    return plan


def short_plan(**changes) -> dict:
    """The mirror image: entry 99-101, stop 102, targets 96 and 94: R:R 2."""
    mirror = {
        "bias": "short",
        "stop_loss": 102.0,
        "targets": [{"price": 96.0, "share": 0.7}, {"price": 94.0, "share": 0.3}],
    }
    return long_plan(**(mirror | changes))


def check(plan: dict) -> Playbook:
    return validate_answer(json.dumps(plan), FRAME, max_atr_distance=5.0)


def test_schema_is_strict_everywhere():
    schema = playbook_json_schema()

    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    found = list(objects(schema))
    assert len(found) == 4  # the playbook, entry, target, risk
    for node in found:
        assert node["additionalProperties"] is False
        assert set(node["required"]) == set(node["properties"])
    fmt = response_format()
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == schema
    assert schema["properties"]["bias"]["enum"] == ["long", "short", "no_trade"]


def test_valid_long_and_short_pass_and_rr_is_computed_from_the_zone_middle():
    assert check(long_plan()).bias == "long"
    assert check(short_plan()).bias == "short"
    assert computed_rr(Playbook.model_validate(long_plan())) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "plan,named",
    [
        (long_plan(stop_loss=99.5), "stop_loss (99.5) < entry.zone_low (99)"),
        (long_plan(targets=[{"price": 100.5, "share": 1.0}]), "entry.zone_high (101) <"),
        (
            long_plan(targets=[{"price": 106.0, "share": 0.5}, {"price": 104.0, "share": 0.5}]),
            "targets[0].price (106) < targets[1].price (104)",
        ),
        (
            long_plan(entry={"type": "stop", "zone_low": 101, "zone_high": 99, "trigger": "x"}),
            "entry.zone_low (101) <= entry.zone_high (99)",
        ),
        (short_plan(stop_loss=100.0), "entry.zone_high (101) < stop_loss (100)"),
        (short_plan(targets=[{"price": 99.5, "share": 1.0}]), "targets[0].price (99.5) <"),
    ],
)
def test_levels_out_of_order_are_rejected_naming_the_pair(plan, named):
    with pytest.raises(PlaybookRejected, match="out of order") as info:
        check(plan)
    assert named in str(info.value)


def test_reward_to_risk_within_ten_percent():
    check(long_plan(risk={"max_risk": 0.01, "rr_ratio": 2.15}))  # 7.5 % off: accepted
    with pytest.raises(PlaybookRejected, match="rr_ratio 2.3 disagrees with 2.000"):
        check(long_plan(risk={"max_risk": 0.01, "rr_ratio": 2.3}))  # 15 % off


def test_target_shares_sum_to_one_within_a_hundredth():
    check(long_plan(targets=[{"price": 104, "share": 0.5}, {"price": 106, "share": 0.505}]))
    with pytest.raises(PlaybookRejected, match="shares sum to 0.9000"):
        check(long_plan(targets=[{"price": 104, "share": 0.5}, {"price": 106, "share": 0.4}]))


def test_prices_within_a_few_atr_of_the_last_close():
    check(long_plan(targets=[{"price": 104, "share": 0.5}, {"price": 110, "share": 0.5}]))
    with pytest.raises(PlaybookRejected, match=r"targets\[1\].price 110.5 is more than 5 ATR"):
        check(long_plan(targets=[{"price": 104, "share": 0.5}, {"price": 110.5, "share": 0.5}]))


def test_no_trade_carries_no_levels():
    none = long_plan(bias="no_trade", entry=None, stop_loss=None, targets=[], risk=None)
    assert check(none).bias == "no_trade"
    with pytest.raises(PlaybookRejected, match="no_trade must carry no levels, but has stop_loss"):
        check({**none, "stop_loss": 98.0})
    with pytest.raises(PlaybookRejected, match="a long playbook needs stop_loss"):
        check(long_plan(stop_loss=None))


@pytest.mark.parametrize(
    "change,named",
    [
        ({"confidence": 70.5}, "confidence"),
        ({"confidence": "70"}, "confidence"),
        ({"confidence": 101}, "confidence"),
        ({"bias": "moon"}, "bias"),
        ({"rationale": "x" * 801}, "rationale"),
        ({"rationale": "ok\x1b[31mred"}, "control characters"),
        ({"extra": 1}, "extra"),
        ({"levels_used": ["tpo_poc", "rm -rf /"]}, "levels_used"),
        ({"risk": {"max_risk": 0.5, "rr_ratio": 2.0}}, "max_risk"),
    ],
)
def test_schema_breaks_are_rejected_by_the_model(change, named):
    with pytest.raises(PlaybookRejected, match="breaks the schema") as info:
        check(long_plan(**change))
    assert named in str(info.value)
    assert "rm -rf" not in str(info.value)  # errors never quote the model's text


def test_levels_used_must_be_levels_in_the_data():
    with pytest.raises(PlaybookRejected, match="not in the data: vp_poc"):
        check(long_plan(levels_used=["tpo_poc", "vp_poc"]))


@pytest.mark.parametrize("text", ["", "   ", "Go long!", '{"bias": "long"', "[1, 2]", "NaN"])
def test_non_json_or_wrong_json_is_rejected(text):
    with pytest.raises(PlaybookRejected):
        parse_answer(text)


def test_check_is_pure_data_validation():
    pb = Playbook.model_validate(long_plan())
    check_playbook(pb, FRAME, max_atr_distance=5.0)  # no exception
    with pytest.raises(PlaybookRejected, match="more than 1 ATR"):
        check_playbook(pb, FRAME, max_atr_distance=1.0)
