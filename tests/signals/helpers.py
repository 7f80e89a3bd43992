"""Candle builders for signal tests."""

from __future__ import annotations

import pandas as pd

DAY = pd.Timestamp("2024-01-01")


def candles(
    bars: list[tuple[float, ...]], *, minutes: int = 30, start: pd.Timestamp = DAY
) -> pd.DataFrame:
    """Candles from (high, low) or (open, high, low, close[, volume]) tuples, one per `minutes`."""
    rows = []
    for i, bar in enumerate(bars):
        if len(bar) == 2:
            high, low = bar
            bar = (low, high, low, high, 1.0)
        o, h, lo, c, *v = bar
        rows.append(
            {
                "open_time": start + pd.Timedelta(minutes=minutes * i),
                "open": o,
                "high": h,
                "low": lo,
                "close": c,
                "volume": v[0] if v else 1.0,
            }
        )
    out = pd.DataFrame(rows)
    out["open_time"] = out["open_time"].astype("datetime64[ms]")
    return out


def resample(five: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Complete `minutes` candles from 5m candles (partial first/last buckets dropped)."""
    key = five["open_time"].dt.floor(f"{minutes}min")
    grouped = five.groupby(key)
    out = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
        }
    )
    complete = grouped.size() == minutes // 5
    out = out[complete.to_numpy()].rename_axis("open_time").reset_index()
    out["open_time"] = out["open_time"].astype("datetime64[ms]")
    return out
