"""Candles as arrays, oldest first: cheap to cut at each as_of and to walk when grading."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Bars:
    """Candles as arrays, oldest first (`open_time` in epoch ms): cheap to cut per as_of."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Bars:
        """The arrays of a candles frame (`quote_volume` NaN when it has none)."""
        quote = frame["quote_volume"] if "quote_volume" in frame else np.full(len(frame), np.nan)
        return cls(
            frame["open_time"].to_numpy(np.int64),
            *(frame[k].to_numpy(float) for k in ("open", "high", "low", "close", "volume")),
            np.asarray(quote, dtype=float),
        )

    def __len__(self) -> int:
        return len(self.open_time)

    def cut(self, start: int, stop: int) -> Bars:
        """Bars [start, stop) by position."""
        return Bars(*(getattr(self, f.name)[start:stop] for f in fields(self)))

    def closed_by(self, as_of_ms: int, step: int, bars: int | None = None) -> Bars:
        """The bars closed at or before as_of (opened within `bars` steps of it when given)."""
        stop = int(np.searchsorted(self.open_time + step, as_of_ms, side="right"))
        start = 0 if bars is None else int(np.searchsorted(self.open_time, as_of_ms - bars * step))
        return self.cut(start, stop)
