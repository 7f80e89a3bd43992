"""Rule-based playbooks: each rule's levels by hand, and every one passes the same validation."""

from __future__ import annotations

import pytest

from tests.playbooks.conftest import AS_OF, UNIT
from vectorflow.playbooks.inputs import PlaybookInputs
from vectorflow.playbooks.rules import rules_playbook
from vectorflow.playbooks.validate import MarketFrame, check_playbook


def inputs(levels: dict | None = None, **signals) -> PlaybookInputs:
    base = {"range_high_20": 103.0, "range_low_20": 97.0}
    return PlaybookInputs(
        UNIT, AS_OF, {"last_price": 100.0, "atr": 2.0}, base | (levels or {}), signals
    )


def valid(pb, given: PlaybookInputs) -> None:
    check_playbook(pb, MarketFrame(given.last_close, given.atr, given.levels), max_atr_distance=5)


def test_trend_up_buys_a_pullback_one_atr_stop():
    given = inputs(regime="trend_up|normal_vol", adx=32.0)
    pb = rules_playbook(given)
    valid(pb, given)
    assert pb.bias == "long" and pb.confidence == 60  # +10 for ADX >= 30
    assert (pb.entry.zone_low, pb.entry.zone_high) == pytest.approx((99.0, 99.8))
    assert pb.stop_loss == pytest.approx(97.0)
    assert [t.price for t in pb.targets] == pytest.approx([102.0, 104.0])
    assert pb.risk.rr_ratio == pytest.approx((102 - 99.4) / (99.4 - 97.0), abs=1e-4)


def test_trend_down_high_vol_sells_a_bounce_with_half_the_risk():
    given = inputs(regime="trend_down|high_vol", adx=22.0, last_trap_type="bull_trap")
    pb = rules_playbook(given)
    valid(pb, given)
    assert pb.bias == "short" and pb.risk.max_risk == 0.005
    assert pb.confidence == 50  # +10 trap agrees, -10 high volatility
    assert pb.stop_loss == pytest.approx(103.0)
    assert [t.price for t in pb.targets] == pytest.approx([98.0, 96.0])


def test_range_above_value_fades_toward_the_poc():
    given = inputs({"tpo_vah": 98.0, "tpo_val": 94.0, "tpo_poc": 96.0}, regime="range|low_vol")
    pb = rules_playbook(given)
    valid(pb, given)
    assert pb.bias == "short"
    assert (pb.entry.zone_low, pb.entry.zone_high) == pytest.approx((100.0, 100.6))
    assert [t.price for t in pb.targets] == pytest.approx([96.0, 94.0])
    assert set(pb.levels_used) == {"tpo_vah", "tpo_val", "tpo_poc"}


def test_a_poc_too_close_pushes_the_first_target_half_an_atr_past_the_zone():
    given = inputs({"tpo_vah": 104.0, "tpo_val": 100.5, "tpo_poc": 100.6})
    pb = rules_playbook(given)
    valid(pb, given)
    assert pb.bias == "long"
    assert [t.price for t in pb.targets] == pytest.approx([101.0, 103.0])


def test_inside_value_without_a_trend_is_no_trade():
    pb = rules_playbook(inputs({"tpo_vah": 101.0, "tpo_val": 99.0}, regime="range|normal_vol"))
    assert pb.bias == "no_trade" and pb.entry is None and pb.targets == []


def test_without_a_profile_the_20_bar_range_edges_are_used():
    low_in_range = PlaybookInputs(
        UNIT,
        AS_OF,
        {"last_price": 97.5, "atr": 2.0},
        {"range_high_20": 103.0, "range_low_20": 97.0},
    )
    pb = rules_playbook(low_in_range)
    assert pb.bias == "long" and pb.levels_used == ["range_high_20", "range_low_20"]
    assert pb.targets[0].price == pytest.approx(100.0)  # the range middle
