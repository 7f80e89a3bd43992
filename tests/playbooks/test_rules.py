"""Rule-based playbooks: each rule's levels by hand, and every one passes the same validation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.playbooks.conftest import AS_OF, UNIT, make_candles
from vectorflow.playbooks.context import build_inputs
from vectorflow.playbooks.inputs import PlaybookInputs
from vectorflow.playbooks.rules import rules_playbook
from vectorflow.playbooks.ticks import is_multiple
from vectorflow.playbooks.validate import MarketFrame, check_playbook

RANGE = {"range_high_20": 110.0, "range_low_20": 90.0}


def inputs(levels: dict | None = None, sections: dict | None = None, **signals) -> PlaybookInputs:
    return PlaybookInputs(
        UNIT,
        AS_OF,
        {"last_price": 100.0, "atr": 2.0},
        RANGE | (levels or {}),
        signals,
        sections=sections or {},
        tick_size=0.1,
    )


def valid(pb, given: PlaybookInputs) -> None:
    frame = MarketFrame(given.last_close, given.atr, given.citable_levels())
    check_playbook(pb, frame, max_atr_distance=5)


def test_a_trend_up_buys_the_pullback_to_the_nearest_level_and_cites_it():
    given = inputs(
        {"tpo_vah": 99.2, "tpo_poc": 98.0, "range_high_20": 103.0},
        {
            "higher_timeframe": {"timeframe": "4h", "regime": "trend_up|normal_vol"},
            "derivatives": {"oi_quadrant": "long_build_up"},
            "order_book": {"imbalance_50bps": 0.35},
        },
        regime="trend_up|normal_vol",
        adx=32.0,
        plus_di=30.0,
        minus_di=12.0,
        last_trap_type="bear_trap",
        last_trap_level=97.0,
    )
    pb = rules_playbook(given)
    valid(pb, given)
    assert pb.bias == "long"
    # VAH 99.2 is the nearest level 0.1-1.5 ATR under the close: zone [VAH, VAH + 0.25 ATR]
    assert (pb.entry.zone_low, pb.entry.zone_high) == (99.2, 99.7)
    assert pb.stop_loss == 98.2  # half an ATR under the zone
    # middle 99.45, risk 1.25: the 20-bar high 103 lies within 1.5R-3R, then max(3R, T1 + 1R)
    assert [t.price for t in pb.targets] == [103.0, 104.2]
    assert pb.risk.rr_ratio == pytest.approx((103 - 99.45) / 1.25, abs=1e-4)
    assert pb.levels_used == ["tpo_vah", "range_high_20"]
    assert pb.invalidation == "a 1h close below VAH 99.2"
    assert pb.confidence == 50 + 10 + 5 + 5 + 5  # HTF, OI build-up, bids, bear trap
    assert "ADX 32.0, +DI 30.0 vs -DI 12.0 (spread +18.0)" in pb.rationale
    assert "above VAH 99.2" in pb.rationale and "bear trap at 97.0" in pb.rationale
    assert "OI long build up" in pb.rationale and "Book imbalance +0.35" in pb.rationale


def test_a_trend_down_without_a_level_sells_a_one_atr_bounce_with_half_the_risk():
    given = inputs(regime="trend_down|high_vol", adx=40.0, plus_di=10.0, minus_di=30.0)
    pb = rules_playbook(given)
    valid(pb, given)
    assert pb.bias == "short" and pb.risk.max_risk == 0.005
    assert (pb.entry.zone_low, pb.entry.zone_high) == (100.2, 101.0)
    assert pb.stop_loss == 102.0
    assert [t.price for t in pb.targets] == [97.8, 96.4]  # middle 100.6 - 2R, - 3R (R 1.4)
    assert pb.confidence == 50 + 10 - 10  # ADX >= 35, high volatility
    assert pb.invalidation == "a 1h close above 101.0 with +DI above -DI"
    assert pb.invalidation != f"a close beyond the stop at {pb.stop_loss}"


def test_a_trend_against_the_higher_timeframe_loses_confidence():
    given = inputs(
        sections={"higher_timeframe": {"timeframe": "4h", "regime": "trend_down|normal_vol"}},
        adx=30.0,
        plus_di=28.0,
        minus_di=14.0,
    )
    assert rules_playbook(given).confidence == 40


def test_a_di_spread_below_the_threshold_is_no_trade():
    # Regression: "trend_down" was traded with +DI 20.2 against -DI 20.6
    given = inputs(regime="trend_down|normal_vol", adx=27.0, plus_di=20.2, minus_di=20.6)
    pb = rules_playbook(given)
    valid(pb, given)
    assert pb.bias == "no_trade" and pb.entry is None and pb.targets == []
    assert "+DI 20.2 against -DI 20.6: a spread of 0.4 is below 5" in pb.rationale


def test_a_weak_adx_is_no_trade_with_the_range_confidence():
    pb = rules_playbook(inputs({"tpo_vah": 101.0, "tpo_val": 99.0}, adx=17.0, plus_di=25.0,
                               minus_di=10.0))
    assert pb.bias == "no_trade" and pb.confidence == 60
    assert "ADX 17.0 is below 25" in pb.rationale and "inside value" in pb.rationale
    assert pb.invalidation.startswith("a trend forming on the 1h")


def test_without_regime_figures_no_direction_is_taken():
    pb = rules_playbook(inputs(regime="trend_up|normal_vol"))
    assert pb.bias == "no_trade" and "no ADX / DI figures" in pb.rationale


@pytest.mark.parametrize("seed", range(6))
def test_rules_prices_are_multiples_of_the_tick(seed):
    candles = make_candles(300, seed=seed)
    rng = np.random.default_rng(seed)
    tick = [0.01, 0.1, 0.5][seed % 3]
    plus, minus = (32.0, 11.0) if seed % 2 else (9.0, 29.0)
    signals = {"adx": 31.0, "plus_di": plus, "minus_di": minus, "regime": "trend_up|normal_vol"}
    last = float(candles["close"].iloc[-1])
    signals |= {"tpo_vah": last + rng.normal(0, 50), "tpo_val": last - rng.normal(80, 20)}
    given = build_inputs(UNIT, candles, AS_OF, signals, tick_size=tick)
    pb = rules_playbook(given)
    assert pb.bias in ("long", "short")
    prices = [pb.entry.zone_low, pb.entry.zone_high, pb.stop_loss, *(t.price for t in pb.targets)]
    assert all(is_multiple(p, tick) for p in prices), prices
    valid(pb, given)
