"""Traps and sweeps on hand-made series; event time is the confirming close."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.signals.helpers import DAY, candles
from vectorflow.signals.compute import SignalOptions, signals_at, trap_events
from vectorflow.signals.traps import TrapSettings, find_traps

BELOW = (99.0, 99.5, 98.5, 99.0)
BULL_TRAP = [
    BELOW,
    (99.0, 99.8, 98.8, 99.5),
    (99.5, 101.5, 99.4, 101.0),  # 2: closes above 100: the breakout
    (101.0, 101.2, 100.2, 100.5),
    (100.5, 100.6, 98.9, 99.0),  # 4: closes back below within 3 bars: the trap
    (99.0, 99.5, 98.5, 99.2),
    (99.2, 102.5, 99.0, 102.0),  # 6: closes above the extreme 101.5: invalidated
]


def run(bars, *, level=100.0, source="vah", natr=0.0, settings=None):
    o, h, lo, c = (np.array(col, dtype=np.float64) for col in zip(*bars, strict=True))
    levels = {source: np.full(len(c), level)}
    return find_traps(h, lo, c, np.full(len(c), natr), levels, settings or TrapSettings())


def mirror(bars):
    """The same bars reflected around 100 (highs become lows)."""
    return [(200 - o, 200 - lo, 200 - h, 200 - c) for o, h, lo, c in bars]


def test_bull_trap_event_at_the_confirming_close():
    ev = run(BULL_TRAP)
    assert len(ev) == 1
    assert (ev.type[0], ev.side[0], ev.source[0]) == ("bull_trap", "high", "vah")
    assert (ev.breakout[0], ev.confirm[0]) == (2, 4)
    assert ev.level[0] == 100.0 and ev.extreme[0] == 101.5
    assert ev.invalidated[0] == 6


def test_bear_trap_is_the_mirror_image():
    ev = run(mirror(BULL_TRAP), source="val")
    assert len(ev) == 1
    assert (ev.type[0], ev.side[0], ev.breakout[0], ev.confirm[0]) == ("bear_trap", "low", 2, 4)
    assert ev.level[0] == 100.0 and ev.extreme[0] == 98.5 and ev.invalidated[0] == 6


def test_confirmation_must_come_within_m_bars():
    late = BULL_TRAP[:3] + [(101.0, 101.2, 100.2, 100.5)] * 2 + [(100.5, 100.6, 98.9, 99.0)]
    assert (run(late).confirm == [5]).all()  # b + 3: still a trap
    held = late[:5] + [(100.5, 101.3, 100.1, 101.2), (101.2, 101.3, 98.9, 99.0)]
    assert len(run(held)) == 0  # the breakout held for 3 bars: no event, even if it fails later


def test_invalidated_breakout_yields_no_trap():
    bars = [BELOW, (99.0, 101.5, 98.9, 101.0), (101.0, 102.5, 100.8, 102.0)]
    bars.append((102.0, 102.1, 98.5, 99.0))  # back below 100, but after a close beyond 101.5
    assert len(run(bars)) == 0


def test_close_at_the_level_neither_breaks_out_nor_comes_back():
    at_level = [BELOW, (99.0, 100.4, 98.9, 100.0), (100.0, 100.0, 98.9, 99.0)]
    assert len(run(at_level)) == 0
    back_to_level = BULL_TRAP[:3] + [(101.0, 101.2, 99.9, 100.0)] * 3
    assert len(run(back_to_level)) == 0


def test_sweep_pierces_by_more_than_epsilon():
    sweep = [BELOW, (99.0, 100.3, 98.9, 99.8)]
    ev = run(sweep)
    assert list(ev.type) == ["sweep_high"]
    assert (ev.breakout[0], ev.confirm[0], ev.extreme[0]) == (1, 1, 100.3)
    shallow = [BELOW, (99.0, 100.04, 98.9, 99.8)]  # 0.04 % < 0.05 %
    assert len(run(shallow)) == 0
    atr_bound = [BELOW, (99.0, 100.08, 98.9, 99.8)]  # 0.08 %: above 0.05 % ...
    assert len(run(atr_bound)) == 1
    assert len(run(atr_bound, natr=0.01)) == 0  # ... but not above 0.1 x ATR/close = 0.1 %
    low_sweep = run(mirror(sweep), source="val")
    assert list(low_sweep.type) == ["sweep_low"] and low_sweep.extreme[0] == 99.7


def test_a_bar_already_above_the_level_is_not_a_sweep():
    bars = [(100.5, 100.8, 100.2, 100.5), (100.5, 101.0, 99.0, 99.5)]
    ev = run(bars)
    assert len(ev) == 0


ROLLING = [
    (99.0, 100.0, 98.0, 99.0, 1.0),
    (99.0, 100.0, 98.5, 99.5, 1.0),
    (99.5, 99.8, 98.8, 99.0, 1.0),
    (99.0, 101.0, 98.9, 100.5, 3.0),  # 3: breaks the 3-bar high 100
    (100.5, 100.7, 99.5, 99.6, 1.0),  # 4: back below: bull trap confirmed at 05:00
    (99.6, 101.6, 99.5, 101.5, 1.0),  # 5: closes above 101: invalidated at 06:00
]
OPTIONS = SignalOptions(traps=TrapSettings(lookback=3))


def test_trap_events_with_rolling_levels_and_times():
    frame = candles(ROLLING, minutes=60)
    oi = pd.DataFrame(
        {
            "time": [DAY + pd.Timedelta(hours=i) for i in range(7)],
            "open_interest": [1000.0 + 10 * i for i in range(7)],
        }
    )
    funding = pd.DataFrame({"funding_time": [DAY], "funding_rate": [-1e-4], "interval_hours": [8]})
    kw = {"timeframe": "1h", "options": OPTIONS, "open_interest": oi, "funding": funding}
    at_confirm = trap_events(frame, as_of="2024-01-01T05:00:00Z", **kw)
    assert len(at_confirm) == 1
    row = at_confirm.iloc[0]
    assert (row["type"], row["level_source"], row["level"]) == ("bull_trap", "rolling_high", 100.0)
    assert row["breakout_time"] == pd.Timestamp("2024-01-01 04:00")  # close of bar 3
    assert row["confirm_time"] == pd.Timestamp("2024-01-01 05:00")  # close of bar 4
    assert row["breakout_volume_ratio"] == pytest.approx(3.0)
    assert row["oi_change"] == pytest.approx(1050.0 / 1030.0 - 1.0)  # bar 3 open -> bar 4 close
    assert row["funding_sign"] == -1 and row["extreme"] == 101.0
    assert pd.isna(row["invalidated_time"])
    later = trap_events(frame, **kw)
    assert later.iloc[0]["invalidated_time"] == pd.Timestamp("2024-01-01 06:00")
    assert len(trap_events(frame, as_of="2024-01-01T04:59:00Z", **kw)) == 0
    since = trap_events(frame, since="2024-01-01T05:30:00Z", **kw)
    assert len(since) == 1  # confirmed before, invalidated after `since`: re-emitted


def test_last_trap_columns_follow_confirmation_and_invalidation():
    frame = candles(ROLLING, minutes=60)
    before = signals_at(frame, as_of="2024-01-01T04:59:00Z", timeframe="1h", options=OPTIONS)
    assert before["last_trap_type"] is None and before["last_trap_time"] is None
    at = signals_at(frame, as_of="2024-01-01T05:00:00Z", timeframe="1h", options=OPTIONS)
    assert at["last_trap_type"] == "bull_trap" and at["last_trap_level"] == 100.0
    assert at["last_trap_time"] == pd.Timestamp("2024-01-01 05:00")
    after = signals_at(frame, as_of="2024-01-01T06:00:00Z", timeframe="1h", options=OPTIONS)
    assert after["last_trap_type"] is None  # invalidated by the 06:00 close
