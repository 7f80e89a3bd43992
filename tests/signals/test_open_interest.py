"""Open interest and funding: quadrants at the dead-band edges, funding across intervals, flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.signals.helpers import DAY, candles
from vectorflow.signals.compute import SignalOptions, signals_at
from vectorflow.signals.open_interest import annualize

HOUR = pd.Timedelta(hours=1)


def two_bars(price_then, price_now, oi_then, oi_now, **kw):
    """Signals at the close of the second of two 1h candles, OI observed at both closes."""
    frame = candles([(p, p, p, p) for p in (price_then, price_now)], minutes=60)
    oi = pd.DataFrame({"time": [DAY + HOUR, DAY + 2 * HOUR], "open_interest": [oi_then, oi_now]})
    return signals_at(frame, as_of=DAY + 2 * HOUR, timeframe="1h", open_interest=oi, **kw)


@pytest.mark.parametrize(
    ("price_now", "oi_now", "label"),
    [
        (1002.0, 1005.0, "neutral"),  # exactly +0.2 % and +0.5 %: inside the inclusive bands
        (998.0, 995.0, "neutral"),  # exactly -0.2 % and -0.5 %
        (1002.1, 1005.0, "neutral"),  # price moved, OI on the band
        (1002.0, 1005.1, "neutral"),  # OI moved, price on the band
        (1002.1, 1005.1, "long_build_up"),
        (997.9, 1005.1, "short_build_up"),
        (1002.1, 994.9, "short_covering"),
        (997.9, 994.9, "long_unwinding"),
    ],
)
def test_quadrant_at_the_dead_band_edges(price_now, oi_now, label):
    out = two_bars(1000.0, price_now, 1000.0, oi_now)
    assert out["oi_quadrant"] == label
    assert out["price_change"] == pytest.approx(price_now / 1000.0 - 1.0)
    assert out["oi_change"] == pytest.approx(oi_now / 1000.0 - 1.0)


def test_dead_bands_are_settings():
    from vectorflow.signals.open_interest import OiSettings

    wide = SignalOptions(oi=OiSettings(oi_band=0.02, price_band=0.01))
    assert two_bars(1000.0, 1005.0, 1000.0, 1010.0)["oi_quadrant"] == "long_build_up"
    assert two_bars(1000.0, 1005.0, 1000.0, 1010.0, options=wide)["oi_quadrant"] == "neutral"


def test_spot_has_no_oi_or_funding():
    frame = candles([(p, p, p, p) for p in (1000.0, 1010.0)], minutes=60)
    out = signals_at(frame, as_of=DAY + 2 * HOUR, timeframe="1h")
    assert out["price_change"] == pytest.approx(0.01)
    for key in ("oi_quadrant", "oi_change", "oi_change_24h", "oi_zscore", "funding_annualized"):
        assert out[key] is None, key


def test_stale_open_interest_is_null():
    frame = candles([(1000.0,) * 4] * 6, minutes=60)
    oi = pd.DataFrame({"time": [DAY + HOUR, DAY + 2 * HOUR], "open_interest": [1000.0, 1010.0]})
    fresh = signals_at(frame, as_of=DAY + 4 * HOUR, timeframe="1h", open_interest=oi)
    assert fresh["oi_change"] == pytest.approx(0.0)  # both ends read the 02:00 observation
    stale = signals_at(frame, as_of=DAY + 5 * HOUR, timeframe="1h", open_interest=oi)
    assert stale["oi_change"] is None and stale["oi_quadrant"] is None


def test_funding_annualised_across_1h_4h_8h_intervals():
    assert annualize(1e-4, 8) == pytest.approx(0.1095)
    assert annualize(1e-4, 4) == pytest.approx(0.219)
    assert annualize(1e-4, 1) == pytest.approx(0.876)
    assert annualize(1e-4 / 8, 1) == pytest.approx(annualize(1e-4, 8))  # same daily carry
    frame = candles([(1000.0,) * 4] * 24, minutes=60)
    funding = pd.DataFrame(
        {
            "funding_time": [DAY, DAY + 8 * HOUR, DAY + 12 * HOUR],
            "funding_rate": [1e-4, 1e-4, 1e-4],
            "interval_hours": [8, 4, 1],
        }
    )

    def annual(hours: float) -> float | None:
        out = signals_at(frame, as_of=DAY + hours * HOUR, timeframe="1h", funding=funding)
        return out["funding_annualized"]

    assert annual(7) == pytest.approx(0.1095)
    assert annual(8) == pytest.approx(0.219)
    assert annual(12) == pytest.approx(0.876)
    assert annual(14) == pytest.approx(0.876)  # two 1h intervals old: still valid
    assert annual(15) is None  # older than two of its intervals


def test_oi_zscore_over_the_trailing_30_days():
    hours = 24 * 40
    frame = candles([(1000.0,) * 4] * hours, minutes=60)
    rng = np.random.default_rng(3)
    values = 1e4 + np.cumsum(rng.normal(0, 10, hours))
    times = [DAY + (i + 1) * HOUR for i in range(hours)]
    oi = pd.DataFrame({"time": times, "open_interest": values})
    out = signals_at(frame, as_of=times[-1], timeframe="1h", open_interest=oi)
    window = values[-30 * 24 :]  # observations in (t - 30 days, t]
    expected = (values[-1] - window.mean()) / window.std(ddof=1)
    assert out["oi_zscore"] == pytest.approx(expected, rel=1e-9)
    early = signals_at(frame, as_of=times[10], timeframe="1h", open_interest=oi)
    assert early["oi_zscore"] is None  # fewer than 24 observations


def test_crowded_longs_and_squeeze_fuel_flags():
    hours = 72
    prices = [1000.0] * (hours - 1) + [1010.0]
    frame = candles([(p, p, p, p) for p in prices], minutes=60)
    oi_values = [1000.0] * (hours - 1) + [1100.0]  # a jump: z > 1 and OI up
    oi = pd.DataFrame(
        {"time": [DAY + (i + 1) * HOUR for i in range(hours)], "open_interest": oi_values}
    )
    rates = [0.0001, 0.0002, 0.0003, 0.0004, 0.0005, 0.0006, 0.0007, 0.0008, 0.0010]
    f_times = [DAY + 8 * i * HOUR for i in range(len(rates))]
    funding = pd.DataFrame({"funding_time": f_times, "funding_rate": rates, "interval_hours": 8})
    kw = {"timeframe": "1h", "open_interest": oi, "options": SignalOptions(extras=True)}
    end = DAY + hours * HOUR
    out = signals_at(frame, as_of=end, funding=funding, **kw)
    assert out["oi_quadrant"] == "long_build_up" and out["oi_zscore"] > 1
    assert out["funding_top_decile"] is True
    assert out["crowded_longs"] is True and out["squeeze_fuel"] is False
    negative = funding.assign(funding_rate=[-r for r in rates])
    flipped = signals_at(frame, as_of=end, funding=negative, **kw)
    assert flipped["squeeze_fuel"] is True and flipped["crowded_longs"] is False
    no_funding = signals_at(frame, as_of=end, **kw)
    assert no_funding["crowded_longs"] is None and no_funding["squeeze_fuel"] is None
