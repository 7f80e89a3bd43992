"""What a playbook is written from: the candles up to `as_of`, their market context, the signals.

`as_of` is a candle close time (open time + one timeframe). Everything is read from the lake
(never the network) as of that time (`vectorflow.playbooks.history`): the market context (last
price, 24 h change and volume, ATR, a few structural levels), the signals row, and the sections
`order_book`, `cross_exchange`, `derivatives` and `higher_timeframe`, each with its time and
source, or saying why it is unavailable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vectorflow.units import Unit

DAY_MS = 86_400_000
ATR_PERIOD = 14
ATR_WINDOW = 250  # bars the ATR is smoothed over: Wilder's weight of older bars is below 1e-8
SECTIONS = ("order_book", "cross_exchange", "derivatives", "higher_timeframe")
HTF_PREFIX = "htf_"

#: signals columns that are price levels, by the name the payload and `levels_used` give them
SIGNAL_LEVELS = {
    "tpo_poc": "tpo_poc",
    "tpo_vah": "tpo_vah",
    "tpo_val": "tpo_val",
    "tpo_ib_high": "tpo_ib_high",
    "tpo_ib_low": "tpo_ib_low",
    "vp_poc": "vp_poc",
    "vp_vah": "vp_vah",
    "vp_val": "vp_val",
    "last_trap_level": "trap_level",
}


@dataclass(frozen=True)
class PlaybookInputs:
    """Everything one playbook is written from, and why it must be skipped (`stale`)."""

    unit: Unit
    as_of_ms: int
    market: dict[str, float] = field(default_factory=dict)
    levels: dict[str, float] = field(default_factory=dict)
    signals: dict[str, object] = field(default_factory=dict)
    stale: str | None = None
    sections: dict[str, dict] = field(default_factory=dict)
    tick_size: float | None = None

    @property
    def last_close(self) -> float:
        """Close of the last candle before as_of."""
        return self.market["last_price"]

    @property
    def atr(self) -> float:
        """Wilder ATR(14) of the candles before as_of."""
        return self.market["atr"]

    def section(self, name: str) -> dict:
        """One of SECTIONS; a section that was not read says so."""
        return self.sections.get(name) or {"unavailable": "not read"}

    def citable_levels(self) -> dict[str, float]:
        """Every level `levels_used` may cite: the series' and the higher timeframe's (htf_)."""
        higher = self.section("higher_timeframe").get("levels") or {}
        return self.levels | {f"{HTF_PREFIX}{k}": v for k, v in higher.items()}


def plain_value(value: object) -> object:
    """numpy / pandas scalars as plain Python values; NaN and NaT as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        naive = value.tz_convert(None) if value.tzinfo is not None else value
        return int(naive.to_datetime64().astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, np.generic):
        return plain_value(value.item())
    if value is pd.NaT:
        return None
    return value


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = ATR_PERIOD) -> float:
    """The last value of Wilder's ATR(n) (TA-Lib's definition); NaN with fewer than n+1 bars."""
    if len(close) < n + 1:
        return math.nan
    prev = close[:-1]
    tr = np.maximum(high[1:], prev) - np.minimum(low[1:], prev)
    atr = tr[:n].mean()
    for value in tr[n:]:
        atr = (atr * (n - 1) + value) / n
    return float(atr)
