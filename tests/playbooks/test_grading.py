"""Grading on hand-made candle paths: outcome, R, excursions; then stored and in the scorecard."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.playbooks.conftest import AS_OF, HOUR, UNIT, lake_of, make_candles, store_candles
from vectorflow.config import load_settings
from vectorflow.lake.catalog import refresh_catalog
from vectorflow.playbooks.compare import bootstrap_interval, compare_sources
from vectorflow.playbooks.grading import Plan, grade, grade_no_trade
from vectorflow.playbooks.outcomes import grade_playbooks
from vectorflow.playbooks.record import PlaybookRecord
from vectorflow.playbooks.store import write_playbooks
from vectorflow.units import Unit

# long: zone 99-100, stop 98, half at 102 and half at 104. A fill at 100 risks 2.
LONG = Plan("long", 99.0, 100.0, 98.0, ((102.0, 0.5), (104.0, 0.5)))
SHORT = Plan("short", 100.0, 101.0, 103.0, ((98.0, 0.5), (96.0, 0.5)))
QUIET = (100.5, 100.9, 100.2, 100.6)  # a bar that stays above the long zone


def bars(*ohlc: tuple[float, float, float, float], fill: tuple | None = None, n: int = 0):
    """Candles after AS_OF from (open, high, low, close), padded with `fill` up to `n` bars."""
    rows = list(ohlc) + [fill] * max(0, n - len(ohlc))
    return pd.DataFrame(
        {
            "open_time": [AS_OF + i * HOUR for i in range(len(rows))],
            "open": [r[0] for r in rows],
            "high": [r[1] for r in rows],
            "low": [r[2] for r in rows],
            "close": [r[3] for r in rows],
            "volume": 1.0,
            "quote_volume": 100.0,
        }
    )


ENTRY = (101.0, 101.5, 99.5, 100.0)  # opens above the zone, trades into it: fill at 100


def test_target_first():
    out = grade(
        LONG, bars(ENTRY, (100, 102.5, 99.8, 102), (102, 104.2, 101, 104)), 48, horizon_closed=False
    )
    assert out.outcome == "target_2" and out.triggered
    assert out.entry_price == 100.0 and out.bars_to_outcome == 3
    assert out.r_multiple == pytest.approx(0.5 * 1 + 0.5 * 2)  # 1.5 R
    assert out.exit_time == AS_OF + 2 * HOUR and out.exit_price == 104.0
    assert out.mfe == pytest.approx(4.2 / 100) and out.mae == pytest.approx(0.5 / 100)


def test_stop_first():
    out = grade(LONG, bars(ENTRY, (100, 100.5, 97.9, 98.2)), 48, horizon_closed=False)
    assert out.outcome == "stopped" and out.r_multiple == pytest.approx(-1.0)
    assert out.exit_price == 98.0 and out.bars_to_outcome == 2


def test_stop_and_target_in_one_bar_counts_the_stop_first():
    out = grade(LONG, bars(ENTRY, (100, 104.5, 97.5, 103)), 48, horizon_closed=False)
    assert out.outcome == "stopped" and out.r_multiple == pytest.approx(-1.0)


def test_a_target_in_the_entry_bar_is_not_credited_but_the_stop_is():
    target_in_entry_bar = grade(LONG, bars((101, 104.5, 99.5, 103)), 2, horizon_closed=True)
    assert target_in_entry_bar.outcome == "expired"  # the 104.5 high may have come first
    stop_in_entry_bar = grade(LONG, bars((101, 101.5, 97.0, 97.5)), 48, horizon_closed=False)
    assert stop_in_entry_bar.outcome == "stopped" and stop_in_entry_bar.bars_to_outcome == 1


def test_never_triggered():
    out = grade(LONG, bars(fill=QUIET, n=48), 48, horizon_closed=True)
    assert out.outcome == "not_triggered" and not out.triggered
    assert out.r_multiple is None and out.entry_price is None and out.bars_to_outcome == 48


def test_expired_closes_the_rest_at_the_horizon_close():
    path = bars(ENTRY, fill=(100.2, 101.5, 98.5, 100.6), n=48)
    out = grade(LONG, path, 48, horizon_closed=True)
    assert out.outcome == "expired" and out.bars_to_outcome == 48
    assert out.r_multiple == pytest.approx((100.6 - 100) / 2)
    assert out.exit_time == AS_OF + 47 * HOUR


def test_first_target_then_stop_weights_r_by_the_shares():
    out = grade(
        LONG, bars(ENTRY, (100, 102.5, 99.8, 102), (101, 101, 97.5, 98)), 48, horizon_closed=False
    )
    assert out.outcome == "target_1" and out.r_multiple == pytest.approx(0.5 * 1 - 0.5 * 1)


def test_a_gap_through_the_stop_exits_at_the_open():
    out = grade(LONG, bars(ENTRY, (97.0, 97.5, 96.0, 96.5)), 48, horizon_closed=False)
    assert out.exit_price == 97.0 and out.r_multiple == pytest.approx(-1.5)


def test_short_mirror():
    entry = (99.8, 100.8, 99.7, 100.5)  # opens below the zone and trades up: fill at 100
    out = grade(
        SHORT, bars(entry, (100, 100.4, 97.5, 98), (98, 99, 95.5, 96)), 48, horizon_closed=False
    )
    assert out.outcome == "target_2" and out.entry_price == 100.0
    assert out.r_multiple == pytest.approx(0.5 * (2 / 3) + 0.5 * (4 / 3))


def test_an_open_trade_inside_an_unfinished_horizon_is_not_graded():
    assert grade(LONG, bars(ENTRY, QUIET), 48, horizon_closed=False) is None
    assert grade(LONG, bars(QUIET, QUIET), 48, horizon_closed=False) is None


def test_grading_stored_playbooks_fills_outcomes_and_the_scorecard(data_dir):
    lake = lake_of(data_dir)
    history = make_candles(100)
    last = float(history["close"].iloc[-1])
    store_candles(lake, UNIT, history)
    after = bars(
        *[
            (last + 25 * i, last + 25 * i + 30, last + 25 * i - 5, last + 25 * (i + 1))
            for i in range(6)
        ]
    )  # rises 25 per bar
    store_candles(lake, UNIT, after)
    common = dict(
        created_at=AS_OF,
        run_id="r",
        exchange="binance",
        market="spot",
        symbol="BTC/USDT",
        timeframe="1h",
        as_of=AS_OF,
        source="grok",
        model="m",
        regime="trend_up|low_vol",
        entry_type="limit",
        rr_ratio=1.0,
        max_risk=0.01,
    )
    winner = PlaybookRecord(
        playbook_id="win",
        status="ok",
        bias="long",
        confidence=80,
        entry_low=last - 10,
        entry_high=last + 5,
        stop_loss=last - 40,
        targets=((last + 50, 1.0),),
        **common,
    )
    loser = PlaybookRecord(
        playbook_id="lose",
        status="repaired",
        bias="short",
        confidence=30,
        entry_low=last - 5,
        entry_high=last + 5,
        stop_loss=last + 20,
        targets=((last - 40, 1.0),),
        **common,
    )
    skipped = PlaybookRecord(
        playbook_id="cached",
        status="ok",
        bias="long",
        confidence=80,
        cached=True,
        entry_low=last - 10,
        entry_high=last + 5,
        stop_loss=last - 40,
        targets=((last + 50, 1.0),),
        **common,
    )
    write_playbooks(lake, [winner, loser, skipped])
    report = grade_playbooks(lake, horizon=4)
    assert (report.candidates, report.graded) == (2, 2)  # cached copies are not graded twice
    assert grade_playbooks(lake, horizon=4).candidates == 0  # graded once
    refresh_catalog(load_settings(data_dir))
    con = duckdb.connect(str(data_dir / "vectorflow.duckdb"), read_only=True)
    outcomes = dict(con.execute("SELECT playbook_id, outcome FROM playbook_outcomes").fetchall())
    card = con.execute(
        "SELECT confidence_band, playbooks, share_triggered, win_rate, total_r "
        "FROM playbook_scorecard ORDER BY confidence_band"
    ).fetchall()
    con.close()
    assert outcomes == {"win": "target_1", "lose": "stopped"}
    assert card == [
        ("25-49", 1, 1.0, 0.0, -1.0),
        ("75-100", 1, 1.0, 1.0, pytest.approx(50 / 40)),  # fill at the close, risk 40, +50
    ]


def test_a_no_trade_is_graded_by_what_staying_out_avoided():
    # close 100, ATR 2: a long (stop 98, target 104) and a short (stop 102, target 96) at 100
    whipsaw = bars((100, 101.5, 97.5, 99), (99, 102.5, 98.5, 101), fill=(101, 101.4, 100.6, 101),
                   n=4)
    out = grade_no_trade(100.0, 2.0, whipsaw, 4, horizon_closed=True)
    assert (out.outcome, out.triggered, out.r_multiple) == ("no_trade", False, None)
    assert out.missed_r == pytest.approx(-1.0) and out.avoided_loss  # both would have stopped
    assert out.move == pytest.approx(0.01) and out.mfe == pytest.approx(0.025)
    assert out.mae == pytest.approx(0.025) and out.exit_price == 101
    rally = bars((100, 100.5, 99.5, 100.2), (100.2, 104.5, 100, 104), fill=(104, 104, 104, 104),
                 n=4)
    missed = grade_no_trade(100.0, 2.0, rally, 4, horizon_closed=True)
    assert missed.missed_r == pytest.approx(2.0) and not missed.avoided_loss
    assert grade_no_trade(100.0, 2.0, rally.head(2), 4, horizon_closed=False) is None


def _stored(pid: str, exchange: str, bias: str, confidence: int, last: float, **levels):
    return PlaybookRecord(
        playbook_id=pid, created_at=AS_OF, run_id="r", exchange=exchange, market="spot",
        symbol="BTC/USDT", timeframe="1h", as_of=AS_OF, source="rules", status="ok",
        model="rules-v2", regime="trend_up|low_vol", bias=bias, confidence=confidence,
        last_price=last, atr=20.0, **levels,
    )  # fmt: skip


def test_the_scorecard_separates_venues_and_scores_no_trade_and_calibration(data_dir):
    lake = lake_of(data_dir)
    history = make_candles(100)
    last = float(history["close"].iloc[-1])
    rising = bars(*[(last + 25 * i, last + 25 * i + 30, last + 25 * i - 5, last + 25 * (i + 1))
                    for i in range(6)])  # rises 25 per bar
    bybit = Unit("bybit", "spot", "BTC/USDT", "1h")
    for unit in (UNIT, bybit):
        store_candles(lake, unit, history)
        store_candles(lake, unit, rising)
    plan = dict(entry_type="limit", entry_low=last - 10, entry_high=last + 5, rr_ratio=1.0,
                max_risk=0.01)
    write_playbooks(lake, [
        _stored("win", "binance", "long", 80, last, stop_loss=last - 40,
                targets=((last + 50, 1.0),), **plan),
        _stored("out", "bybit", "no_trade", 70, last),  # a 2-ATR rally was there to take
    ])  # fmt: skip
    report = grade_playbooks(lake, horizon=4)
    assert report.graded == 2 and {r["bias"] for r in report.rows} == {"long", "no_trade"}
    refresh_catalog(load_settings(data_dir))
    con = duckdb.connect(str(data_dir / "vectorflow.duckdb"), read_only=True)
    card = con.execute(
        "SELECT exchange, market, playbooks, no_trade, win_rate, avoided_loss_share, brier "
        "FROM playbook_scorecard ORDER BY exchange"
    ).fetchall()
    calibration = con.execute(
        "SELECT confidence_band, scored, brier FROM playbook_calibration ORDER BY ALL"
    ).fetchall()
    con.close()
    assert card == [
        ("binance", "spot", 1, 0, 1.0, None, pytest.approx((0.8 - 1) ** 2)),
        ("bybit", "spot", 1, 1, None, 0.0, pytest.approx((0.7 - 0) ** 2)),
    ]
    assert calibration == [
        ("50-74", 1, pytest.approx(0.49)),
        ("75-100", 1, pytest.approx(0.04)),
        ("all", 2, pytest.approx((0.49 + 0.04) / 2)),
    ]


def test_sources_are_compared_on_the_times_both_graded():
    def record(pid, source, as_of, bias="long", confidence=60):
        return PlaybookRecord(
            playbook_id=pid, created_at=0, run_id="r", exchange="binance", market="spot",
            symbol="BTC/USDT", timeframe="1h", as_of=as_of, source=source, status="ok",
            bias=bias, confidence=confidence,
        )  # fmt: skip

    def outcome(r, triggered=True, avoided=None):
        return {"triggered": triggered, "r_multiple": r, "avoided_loss": avoided}

    records = [record(f"r{i}", "rules", i) for i in range(4)] + [
        record(f"g{i}", "grok", i, "short" if i else "no_trade", 90) for i in range(4)
    ]
    outcomes = {"r0": outcome(2.0), "r1": outcome(-1.0), "r2": outcome(None, False),
                "r3": outcome(1.0), "g0": outcome(None, False, True), "g1": outcome(-1.0),
                "g2": outcome(0.5)}  # g3 was never graded: time 3 is left out for both
    rules, grok = compare_sources(records, outcomes, ("rules", "grok"))
    assert (rules["playbooks"], rules["directional"], rules["share_triggered"]) == (3, 3, 2 / 3)
    assert (rules["win_rate"], rules["avg_r"], rules["total_r"]) == (0.5, 0.5, 1.0)
    assert rules["brier"] == pytest.approx(((0.6 - 1) ** 2 + 0.6**2) / 2)
    assert (grok["playbooks"], grok["no_trade"], grok["avoided_loss_share"]) == (3, 1, 1.0)
    assert grok["avg_r"] == -0.25 and grok["scored"] == 3
    assert grok["brier"] == pytest.approx((0.1**2 + 0.9**2 + 0.1**2) / 3)
    assert rules["avg_r_low"] <= rules["avg_r"] <= rules["avg_r_high"]
    assert bootstrap_interval(np.array([1.0])) is None
    low, high = bootstrap_interval(np.array([1.0, 1.0, 1.0]))
    assert low == high == 1.0
