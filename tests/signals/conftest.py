"""Fixtures: the bundled real candles (5m, 30m, 1h) and synthetic perpetual inputs."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from tests.signals.helpers import resample


@pytest.fixture(scope="session")
def real_5m() -> pd.DataFrame:
    """The bundled real BTC/USDT 5m candles (10,999 of them, January-February 2023)."""
    path = resources.files("vectorflow.sim") / "data" / "btc_usdt_5m.parquet"
    with resources.as_file(path) as real:
        frame = pd.read_parquet(real)
    frame["open_time"] = frame["open_time"].astype("datetime64[ms]")
    return frame


@pytest.fixture(scope="session")
def real_1h(real_5m: pd.DataFrame) -> pd.DataFrame:
    """The bundled candles as complete 1h candles."""
    return resample(real_5m, 60)


@pytest.fixture(scope="session")
def real_30m(real_5m: pd.DataFrame) -> pd.DataFrame:
    """The bundled candles as complete 30m candles."""
    return resample(real_5m, 30)


@pytest.fixture(scope="session")
def perp_inputs(real_1h: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Synthetic hourly open interest and funding (8h, then 4h, then 1h) over the real candles."""
    rng = np.random.default_rng(5)
    n = len(real_1h)
    oi = 1e5 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    times = real_1h["open_time"] + pd.Timedelta(hours=1)
    open_interest = pd.DataFrame(
        {"time": times, "open_interest": oi, "open_interest_value": oi * real_1h["close"]}
    )
    start, end = times.iloc[0].ceil("8h"), times.iloc[-1]
    third = (end - start) / 3
    parts = [
        pd.date_range(start, start + third, freq="8h"),
        pd.date_range(
            (start + third).ceil("4h") + pd.Timedelta(hours=4), start + 2 * third, freq="4h"
        ),
        pd.date_range((start + 2 * third).ceil("1h") + pd.Timedelta(hours=1), end, freq="1h"),
    ]
    funding = pd.concat(
        pd.DataFrame({"funding_time": p, "interval_hours": h})
        for p, h in zip(parts, (8, 4, 1), strict=True)
    )
    funding["funding_rate"] = rng.normal(1e-4, 1.5e-4, len(funding))
    funding["funding_time"] = funding["funding_time"].astype("datetime64[ms]")
    return {"open_interest": open_interest, "funding": funding.reset_index(drop=True)}
