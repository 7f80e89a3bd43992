"""The signal set: stored columns, history vs point-in-time, and no look-ahead (property test)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.signals.helpers import candles
from vectorflow.errors import InvalidInput
from vectorflow.signals.compute import (
    DEV_COLUMNS,
    EXTRA_COLUMNS,
    STORED_COLUMNS,
    TRAP_EVENT_COLUMNS,
    SignalOptions,
    signals_at,
    signals_history,
    signals_update,
    trap_events,
)
from vectorflow.signals.tpo import TpoSettings, tpo_profile

HOUR = pd.Timedelta(hours=1)
EXTRAS = SignalOptions(extras=True)


def norm(value: object) -> object:
    """One representation for nulls and numbers, so history rows and dicts compare exactly."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, pd.Timestamp):
        return value.item()
    return value


def row_of(history: pd.DataFrame, k: int) -> dict[str, object]:
    return {c: norm(history[c].iloc[k]) for c in history.columns if c != "as_of"}


def cut(frame: pd.DataFrame, column: str, limit: pd.Timestamp, step: pd.Timedelta | None = None):
    """Rows of `frame` whose `column` + `step` is at or before `limit`."""
    return frame[frame[column] + (step or pd.Timedelta(0)) <= limit].reset_index(drop=True)


@pytest.fixture(scope="module")
def perp(real_1h, real_30m, perp_inputs) -> dict[str, object]:
    return {"candles": real_1h, "tpo_candles": real_30m, "tpo_timeframe": "30m"} | perp_inputs


@pytest.fixture(scope="module")
def history(perp) -> pd.DataFrame:
    return signals_history(timeframe="1h", options=EXTRAS, **perp)


@pytest.fixture(scope="module")
def events(perp) -> pd.DataFrame:
    return trap_events(timeframe="1h", options=EXTRAS, **perp)


def test_signals_at_gives_exactly_the_stored_columns(perp):
    as_of = pd.Timestamp("2023-02-01")
    out = signals_at(as_of=as_of, timeframe="1h", **perp)
    assert tuple(out) == STORED_COLUMNS
    assert out["tpo_session"] == pd.Timestamp("2023-01-31") and out["tpo_row_size"] == 20.0
    assert out["tpo_val"] <= out["tpo_poc"] <= out["tpo_vah"]
    assert out["regime"].count("|") == 1 and out["oi_quadrant"] is not None
    assert out["funding_annualized"] is not None
    full = signals_at(as_of=as_of, timeframe="1h", options=EXTRAS, **perp)
    assert tuple(full) == STORED_COLUMNS + EXTRA_COLUMNS
    dev = signals_at(as_of=as_of, timeframe="1h", options=SignalOptions(developing=True), **perp)
    assert tuple(dev) == STORED_COLUMNS + DEV_COLUMNS


def test_developing_columns_match_the_profile(perp):
    as_of = pd.Timestamp("2023-02-01 13:00")
    out = signals_at(as_of=as_of, timeframe="1h", options=SignalOptions(developing=True), **perp)
    profile = tpo_profile(perp["tpo_candles"], timeframe="30m", as_of=as_of, developing=True)
    assert out["tpo_dev_session"] == pd.Timestamp("2023-02-01")
    assert (out["tpo_dev_poc"], out["tpo_dev_vah"], out["tpo_dev_val"]) == (
        profile.poc,
        profile.vah,
        profile.val,
    )
    assert out["tpo_dev_vp_poc"] == profile.vp_poc and out["tpo_dev_poor_high"] == profile.poor_high


def test_history_rows_equal_signals_at_and_update_adds_one_bar(perp, history, events):
    closes = perp["candles"]["open_time"] + HOUR
    assert len(history) == len(perp["candles"])
    assert list(history.columns) == ["as_of", *STORED_COLUMNS, *EXTRA_COLUMNS]
    assert (history["as_of"] == closes).all()
    last = signals_at(as_of=closes.iloc[-1], timeframe="1h", options=EXTRAS, **perp)
    assert row_of(history, len(history) - 1) == {k: norm(v) for k, v in last.items()}
    rows, new_events = signals_update(timeframe="1h", since=closes.iloc[-2], options=EXTRAS, **perp)
    assert len(rows) == 1 and row_of(rows, 0) == row_of(history, len(history) - 1)
    assert list(new_events.columns) == list(TRAP_EVENT_COLUMNS)
    changed = (events["confirm_time"] > closes.iloc[-2]) | (
        events["invalidated_time"] > closes.iloc[-2]
    )
    assert len(new_events) == int(changed.sum())
    window = signals_history(
        timeframe="1h", start=closes.iloc[99], end=closes.iloc[199], options=EXTRAS, **perp
    )
    assert len(window) == 100 and row_of(window, 0) == row_of(history, 100)


def test_history_sanity(history, events):
    regimes = history["regime"]
    assert (regimes.iloc[:249] == "insufficient_data").all()
    assert (regimes.iloc[249:] != "insufficient_data").all()
    assert set(events["type"]) == {"bull_trap", "bear_trap", "sweep_high", "sweep_low"}
    assert (events["confirm_time"] >= events["breakout_time"]).all()
    assert events["level_source"].isin(["vah", "val", "ib_high", "ib_low"]).any()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pick=st.integers(0, 10**6),
    at=st.sampled_from(["any bar", "confirm_time", "breakout_time"]),
    minutes=st.sampled_from([0, 0, 1, 29, 59]),
)
def test_no_look_ahead(perp, history, events, pick, at, minutes):
    """Every signal at as_of equals the same signal computed on inputs truncated at as_of.

    as_of is any bar's close, or the close of a trap's breakout or confirming bar (where a leak
    in the trap scan would show), or a few minutes later (still the same bar).
    """
    if at == "any bar":
        close = history["as_of"].iloc[pick % len(history)]
    else:
        close = events[at].iloc[pick % len(events)]
    k = int((history["as_of"] == close).to_numpy().nonzero()[0][0])
    as_of = close + pd.Timedelta(minutes=minutes)  # within the next bar: same values as at close
    cut_inputs = {
        "candles": cut(perp["candles"], "open_time", as_of, HOUR),
        "tpo_candles": cut(perp["tpo_candles"], "open_time", as_of, pd.Timedelta(minutes=30)),
        "tpo_timeframe": "30m",
        "open_interest": cut(perp["open_interest"], "time", as_of),
        "funding": cut(perp["funding"], "funding_time", as_of),
    }
    got = signals_at(as_of=as_of, timeframe="1h", options=EXTRAS, **cut_inputs)
    assert {key: norm(v) for key, v in got.items()} == row_of(history, k)
    seen = trap_events(timeframe="1h", as_of=as_of, options=EXTRAS, **cut_inputs)
    known = events[events["confirm_time"] <= as_of].copy()
    known.loc[known["invalidated_time"] > as_of, "invalidated_time"] = pd.NaT
    pd.testing.assert_frame_equal(seen.reset_index(drop=True), known.reset_index(drop=True))


def test_tpo_sources():
    bars = [(100.0 + i % 5, 102.0 + i % 5, 99.0 + i % 5, 101.0 + i % 5) for i in range(72)]
    one_hour = candles(bars, minutes=60)
    out = signals_at(one_hour, as_of="2024-01-03T00:00:00Z", timeframe="1h")
    assert out["tpo_poc"] is None and out["tpo_session"] is None  # 1h candles cannot make TPOs
    thirty = candles(bars, minutes=30)
    own = signals_at(
        thirty,
        as_of="2024-01-02T00:00:00Z",
        timeframe="30m",
        options=SignalOptions(tpo=TpoSettings(row_size=1)),
    )
    assert own["tpo_session"] == pd.Timestamp("2024-01-01") and own["tpo_row_size"] == 1.0
    inferred = signals_at(
        one_hour, as_of="2024-01-02T00:00:00Z", timeframe="1h", tpo_candles=thirty
    )
    assert inferred["tpo_poc"] is not None
    with pytest.raises(InvalidInput, match="30 minutes"):
        signals_at(thirty, as_of="2024-01-02", timeframe="30m", tpo_candles=one_hour)


def test_before_any_candle_everything_is_null():
    frame = candles([(100.0, 101.0, 99.0, 100.5)] * 3, minutes=60)
    out = signals_at(frame, as_of="2023-12-31T00:00:00Z", timeframe="1h")
    assert out["regime"] == "insufficient_data"
    assert all(v is None for k, v in out.items() if k != "regime")
