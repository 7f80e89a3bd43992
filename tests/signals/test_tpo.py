"""TPO profiles: the worked example of docs/signals.md and one case per rule."""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd
import pytest

from tests.signals.helpers import DAY, candles
from vectorflow.errors import InvalidInput
from vectorflow.signals.rows import default_row_size
from vectorflow.signals.tpo import TpoSettings, profile_levels, tpo_profile

NEXT_DAY = "2024-01-02T00:00:00Z"
WORKED = [(105, 101), (104, 100), (106, 102), (107, 103), (106, 103), (104, 102), (105, 103)]
WORKED.append((104, 103))  # periods A-H of docs/signals.md's worked example as (high, low)
ONE = TpoSettings(row_size=1)


def profile(bars, *, settings=ONE, as_of=NEXT_DAY, minutes=30, **kw):
    """The completed session of `bars` (30m (high, low) periods starting 2024-01-01)."""
    return tpo_profile(
        candles(bars, minutes=minutes),
        timeframe=f"{minutes}m",
        as_of=as_of,
        settings=settings,
        **kw,
    )


def test_worked_example_two_row():
    p = profile(WORKED)
    assert p.rows == tuple(float(r) for r in range(100, 108))
    assert p.counts == (1, 2, 4, 8, 8, 5, 3, 1)
    assert sum(p.counts) == 32
    assert p.poc == 103.0  # 103 and 104 tie at 8, equally far from 103.5: the lower
    assert (p.val, p.vah) == (101.0, 105.0)
    assert (p.ib_low, p.ib_high) == (100.0, 105.0)
    assert p.single_prints == (100.0, 107.0)
    assert p.selling_tail == () and p.buying_tail == ()
    assert not p.poor_high and not p.poor_low
    assert p.letters[3] == "ABCDEFGH" and p.letters[0] == "B" and p.letters[-1] == "D"
    assert p.session == DAY and p.row_size == 1.0 and (p.low, p.high) == (100.0, 107.0)


def test_worked_example_single_row():
    p = profile(WORKED, settings=TpoSettings(row_size=1, method="single_row"))
    assert (p.poc, p.val, p.vah) == (103.0, 102.0, 105.0)


def test_worked_example_from_5m_candles():
    """Periods are the max high / min low of the candles opening in them."""
    bars = []
    for high, low in WORKED:
        mid = (high + low) / 2
        bars += [(mid + 0.5, mid - 0.5)] * 2 + [(high, mid), (mid, low)] + [(mid, mid)] * 2
    p = profile(bars, minutes=5)
    assert p.counts == (1, 2, 4, 8, 8, 5, 3, 1)
    assert (p.poc, p.val, p.vah, p.ib_low, p.ib_high) == (103.0, 101.0, 105.0, 100.0, 105.0)


def test_poc_ties_closest_to_centre_then_lower():
    assert profile_levels([1, 3, 2, 3, 2, 3, 1])[0] == 3  # centre row wins among three 3s
    assert profile_levels([3, 1, 1, 3])[0] == 0  # equally far from the centre: the lower
    assert profile_levels([1, 3, 1, 1, 1, 3, 1, 1])[0] == 5  # 5 is nearer the centre 3.5 than 1


def test_value_area_when_one_side_runs_out():
    # POC at the top: only pairs from below; two-row adds {2, 1} at once, single-row one row
    assert profile_levels([1, 2, 3, 6]) == (3, 1, 3)
    assert profile_levels([1, 2, 3, 6], method="single_row") == (3, 2, 3)
    # POC at the bottom: everything comes from above
    assert profile_levels([6, 3, 2, 1]) == (0, 0, 2)
    # one row left below is compared as the whole "pair" against two rows above
    assert profile_levels([5, 9, 1, 1, 4]) == (1, 0, 1)
    # both sides used up before 70 %: the whole profile
    assert profile_levels([1, 1, 1], fraction=1.0) == (1, 0, 2)


def test_value_area_pair_tie_adds_above():
    assert profile_levels([2, 2, 10, 1, 3]) == (2, 2, 4)  # above {1,3}=4 ties below {2,2}=4


def test_selling_and_buying_tails():
    p = profile([(112, 108), (110, 104), (109, 99), (106, 101)])
    assert p.selling_tail == (111.0, 112.0)
    assert p.buying_tail == (99.0, 100.0)
    assert not p.poor_high and not p.poor_low
    one_single = profile([(112, 108), (111, 104), (109, 100), (106, 101)])
    assert one_single.selling_tail == () and one_single.buying_tail == ()  # a tail needs two rows


def test_poor_high_and_low():
    p = profile([(105, 100), (105, 101), (103, 100)])
    assert p.poor_high and p.poor_low
    assert p.selling_tail == () and p.buying_tail == ()


def test_range_extension_both_sides():
    p = profile(WORKED)
    assert p.range_extension_up and not p.range_extension_down  # D prints 107 above IBH 105
    down = profile([(105, 101), (104, 100), (103, 99)])
    assert down.range_extension_down and not down.range_extension_up
    inside = profile([(105, 101), (104, 100), (105, 100)])
    assert not inside.range_extension_up and not inside.range_extension_down


def test_rows_are_exact_at_decimal_boundaries():
    """0.1 + 0.2 and 0.3 share row 3 of r = 0.1 (plain floor(0.3 / 0.1) gives 2)."""
    assert math.floor(0.3 / 0.1) == 2 and 0.1 + 0.2 != 0.3
    p = profile([(0.1 + 0.2, 0.1), (0.3, 0.2), (0.7, 0.6)], settings=TpoSettings(row_size=0.1))
    assert p.rows == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    assert p.counts == (1, 2, 2, 0, 0, 1, 1)
    with_tick = profile(
        [(0.1 + 0.2, 0.1), (0.3, 0.2)], settings=TpoSettings(row_size=0.1, tick_size=0.1)
    )
    assert with_tick.counts == (1, 2, 2) and with_tick.poc == 0.2
    btc = profile([(16727.3, 16727.3), (16727.4, 16727.2)], settings=TpoSettings(row_size=0.1))
    assert btc.rows == (16727.2, 16727.3, 16727.4) and btc.counts == (1, 2, 1)


def test_volume_profile_spreads_each_candle_over_its_rows():
    bars = [(100, 101, 100, 101, 4.0), (101, 103, 101, 103, 3.0)]  # 2+2 / 1+1+1 per row
    p = profile(bars)
    assert p.vp_poc == 101.0  # volumes 100:2, 101:3, 102:1, 103:1
    assert (p.vp_val, p.vp_vah) == (101.0, 103.0)  # above {102,103}=2 ties below {100}=2: above
    no_volume = profile([(100, 101, 100, 101, 0.0)])
    assert no_volume.vp_poc is None and no_volume.poc == 100.0


def test_default_row_size_from_price_and_tick():
    assert default_row_size(20_000.0) == Decimal(20)
    assert default_row_size(60_000.0) == Decimal(50)
    assert default_row_size(1_999.99) == Decimal(1)
    assert default_row_size(0.4, tick_size=0.0001) == Decimal("0.0002")  # 1-2-5 at or below
    assert default_row_size(100.0, tick_size=0.25) == Decimal("0.25")  # raised to a tick multiple
    assert default_row_size(30_000.0, fraction=0.0005) == Decimal(10)


def test_default_row_size_uses_the_sessions_first_open():
    bars = [(20_100, 20_000), (20_200, 20_050)] + [(60_000, 59_000)] * 2  # later prices ignored
    p = profile(bars, settings=TpoSettings())
    assert p.row_size == 20.0
    assert p.rows[0] == 20_000.0 and p.rows[-1] == 60_000.0 and len(p.rows) == 2001


def test_completed_and_developing_sessions():
    frame = candles(WORKED + [(110, 108)] * 40)  # 48 periods: the whole of 2024-01-01
    settings = ONE
    assert (
        tpo_profile(frame, timeframe="30m", as_of="2024-01-01T23:00:00Z", settings=settings) is None
    )
    done = tpo_profile(frame, timeframe="30m", as_of="2024-01-02T00:00:00Z", settings=settings)
    assert done.session == DAY and not done.developing and done.high == 110.0
    dev = tpo_profile(
        frame, timeframe="30m", as_of="2024-01-01T02:00:00Z", developing=True, settings=settings
    )
    assert dev.developing and dev.session == DAY
    assert dev.counts == (1, 2, 3, 4, 4, 3, 2, 1)  # periods A-D only: D closed at 02:00
    open_d = tpo_profile(
        frame, timeframe="30m", as_of="2024-01-01T01:59:00Z", developing=True, settings=settings
    )
    assert open_d.high == 106.0  # period D's candle is still open: not used


def test_ib_missing_when_periods_a_and_b_have_no_candles():
    frame = candles(WORKED)
    frame = frame.iloc[2:]
    p = tpo_profile(frame, timeframe="30m", as_of=NEXT_DAY, settings=ONE)
    assert p.ib_high is None and p.ib_low is None
    assert not p.range_extension_up


def test_invalid_settings_and_timeframes():
    with pytest.raises(InvalidInput, match="method"):
        TpoSettings(method="three_row")
    with pytest.raises(InvalidInput, match="row_size"):
        TpoSettings(row_size=0)
    with pytest.raises(InvalidInput, match="30 minutes"):
        tpo_profile(candles(WORKED, minutes=60), timeframe="1h", as_of=NEXT_DAY)
    with pytest.raises(InvalidInput, match="row size too small"):
        profile([(60_000, 50_000)], settings=TpoSettings(row_size=0.01))
    assert isinstance(candles(WORKED)["open_time"].iloc[0], pd.Timestamp)
