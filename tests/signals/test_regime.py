"""Regime: Wilder indicators against TA-Lib on real candles, rank, hysteresis, labels."""

from __future__ import annotations

import numpy as np
import pytest
import talib  # test-only dependency: the `ta-lib` wheel from PyPI

from vectorflow.signals.compute import signals_at
from vectorflow.signals.regime import (
    RegimeSettings,
    Wilder,
    labels,
    percentile_rank,
    trend_states,
    wilder,
)

WARM_UP = 100  # bars skipped before the tolerance check (ours match from the first value on)


@pytest.mark.parametrize("frame_name", ["real_5m", "real_1h"])
def test_wilder_equals_talib(frame_name, request):
    frame = request.getfixturevalue(frame_name)
    h, lo, c = (frame[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    ours = wilder(h, lo, c, 14)
    reference = {
        "adx": talib.ADX(h, lo, c, timeperiod=14),
        "plus_di": talib.PLUS_DI(h, lo, c, timeperiod=14),
        "minus_di": talib.MINUS_DI(h, lo, c, timeperiod=14),
        "atr": talib.ATR(h, lo, c, timeperiod=14),
    }
    assert len(c) > 800
    for name, ref in reference.items():
        mine = getattr(ours, name)
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref), err_msg=name)
        np.testing.assert_allclose(mine[WARM_UP:], ref[WARM_UP:], rtol=0, atol=1e-6, err_msg=name)
        first = np.flatnonzero(~np.isnan(ref))[0]
        assert abs(mine[first] - ref[first]) < 1e-6, name
    assert np.flatnonzero(~np.isnan(ours.adx))[0] == 27  # 2n - 1, as TA-Lib


def test_wilder_with_other_period_matches_talib(real_1h):
    h, lo, c = (real_1h[k].to_numpy(np.float64) for k in ("high", "low", "close"))
    np.testing.assert_allclose(
        wilder(h, lo, c, 7).adx[50:], talib.ADX(h, lo, c, timeperiod=7)[50:], atol=1e-6
    )


def test_percentile_rank_counts_past_values_only():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 0.5])
    rank = percentile_rank(values, window=3)
    assert np.isnan(rank[0])  # no past values
    assert rank[1] == 1.0 and rank[4] == 1.0  # above all past values
    assert rank[5] == 0.0  # below the window [3, 4, 5]
    ties = percentile_rank(np.array([1.0, 1.0, 1.0, 2.0]), window=2)
    assert ties[2] == 0.5 and ties[3] == 1.0
    assert percentile_rank(np.array([np.nan, 1.0, 2.0]), window=5)[2] == 1.0  # NaNs not counted


def _states(adx, plus, minus):
    arr = [np.array(x, dtype=np.float64) for x in (adx, plus, minus)]
    return trend_states(Wilder(np.zeros(len(adx)), arr[1], arr[2], arr[0])).tolist()


def test_trend_hysteresis():
    up, down = (30, 10), (10, 30)
    seq = [(np.nan, *up), (22, *up), (26, *up), (23, *down), (19, *up), (22, *up), (25, *down)]
    seq += [(24.9, *up), (20, *up), (20.1, *up)]
    states = _states(*zip(*seq, strict=True))
    # none, range (no earlier state), up, keep up, range, keep range, down, keep down, range, keep
    assert states == [0, 3, 1, 1, 3, 3, 2, 2, 3, 3]
    assert _states([25], [20], [20]) == [2]  # +DI not above -DI: down


def test_labels_thresholds_and_insufficient_data():
    s = RegimeSettings()
    trend = np.array([1, 2, 3, 1, 1, 0])
    rank = np.array([0.8, 0.2, 0.5, 0.79, np.nan, 0.5])
    out = labels(trend, rank, np.array([250, 300, 400, 249, 300, 300]), s).tolist()
    assert out == [
        "trend_up|high_vol",
        "trend_down|low_vol",
        "range|normal_vol",
        "insufficient_data",  # 249 bars
        "insufficient_data",  # no rank
        "insufficient_data",  # no trend state yet
    ]


def test_signals_at_regime_needs_250_bars(real_1h):
    tf = 3_600_000
    first_close = real_1h["open_time"].iloc[0].value // 1_000_000 + tf
    at_249 = signals_at(real_1h, as_of=first_close + 248 * tf, timeframe="1h")
    at_250 = signals_at(real_1h, as_of=first_close + 249 * tf, timeframe="1h")
    assert at_249["regime"] == "insufficient_data" and at_249["adx"] is not None
    assert at_250["regime"] != "insufficient_data" and "|" in at_250["regime"]
    c = real_1h["close"].to_numpy()
    h, lo = real_1h["high"].to_numpy(), real_1h["low"].to_numpy()
    ref_atr = talib.ATR(h, lo, c, timeperiod=14)[249]
    assert at_250["natr"] == pytest.approx(ref_atr / c[249], abs=1e-12)
    assert 0.0 <= at_250["natr_rank"] <= 1.0
