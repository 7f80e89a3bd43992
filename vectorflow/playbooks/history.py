"""A series' data as it was at each of a set of times: the inputs of playbooks as of those times.

One load reads, per series, the candles, signals, order-book snapshots, other venues' candles,
open interest and funding, and the higher timeframe's candles and signals that cover every
requested `as_of`; `inputs_at(as_of)` then cuts each at that time. Every part keeps only rows at
or before its `as_of` (a candle when it closed by then, a snapshot, OI or funding row when its
time is not later) over a window that is fixed relative to `as_of`, so the inputs of one as_of
are the same whether it is loaded alone (`vectorflow playbook --as-of`) or within a replay, and
the same as from a lake truncated at that time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from vectorflow.lake.storage import Storage
from vectorflow.playbooks.book import book_sections
from vectorflow.playbooks.context import Bars, build_inputs, context_bars
from vectorflow.playbooks.cross import cross_sections
from vectorflow.playbooks.derivs import (
    DERIVATIVES_LOOKBACK_MS,
    derivative_sections,
    read_derivatives,
)
from vectorflow.playbooks.higher import higher_sections
from vectorflow.playbooks.inputs import PlaybookInputs
from vectorflow.playbooks.reads import last_close_time, read_candles
from vectorflow.playbooks.signal_rows import signal_rows
from vectorflow.timeframes import floor_ms, ms_to_iso, timeframe_ms
from vectorflow.timeframes import now_ms as wall_clock
from vectorflow.units import Unit


@dataclass(frozen=True)
class LoadOptions:
    """How the inputs are read: look-back, configured timeframes, TPO row size, tick size."""

    lookback_bars: int = 48
    timeframes: tuple[str, ...] = ()  # the higher timeframe is the next configured one
    tpo_row_size: float | None = None
    tick_size: float | None = None  # None: inferred from the stored prices


@dataclass(frozen=True)
class SeriesHistory:
    """Everything the playbooks of one series at a set of times are written from."""

    unit: Unit
    options: LoadOptions
    candles: Bars
    signals: dict[int, dict]
    sections: dict[str, dict[int, dict]] = field(default_factory=dict)

    def inputs_at(self, as_of_ms: int, *, now_ms: int | None = None) -> PlaybookInputs:
        """The inputs of the playbook as of `as_of_ms` (one of the loaded times)."""
        step = timeframe_ms(self.unit.timeframe)
        bars = context_bars(self.unit.timeframe, self.options.lookback_bars)
        return build_inputs(
            self.unit,
            self.candles.closed_by(as_of_ms, step, bars),
            as_of_ms,
            self.signals.get(as_of_ms, {}),
            lookback_bars=self.options.lookback_bars,
            now_ms=now_ms,
            sections={name: by_time[as_of_ms] for name, by_time in self.sections.items()},
            tick_size=self.options.tick_size,
        )


def load_history(
    lake: Storage, unit: Unit, as_ofs: list[int], options: LoadOptions = LoadOptions()
) -> SeriesHistory:
    """Read what the playbooks of `unit` at these times are written from, in one pass."""
    times = sorted(set(as_ofs))
    step = timeframe_ms(unit.timeframe)
    bars = context_bars(unit.timeframe, options.lookback_bars)
    first, last = times[0], times[-1]
    candles = read_candles(lake, unit, first - bars * step, last)
    derivatives = None
    if unit.market == "linear":
        derivatives = read_derivatives(lake, unit, first - DERIVATIVES_LOOKBACK_MS, last)
    signals = signal_rows(lake, unit, times, derivatives, tpo_row_size=options.tpo_row_size)
    oi, funding = derivatives if derivatives is not None else (pd.DataFrame(), pd.DataFrame())
    sections = {
        "order_book": book_sections(lake, unit, times),
        "cross_exchange": cross_sections(lake, unit, times),
        "derivatives": derivative_sections(unit, candles, oi, funding, times),
        "higher_timeframe": higher_sections(
            lake, unit, times, options.timeframes, tpo_row_size=options.tpo_row_size
        ),
    }
    return SeriesHistory(unit, options, Bars.of(candles), signals, sections)


def latest_as_of(lake: Storage, unit: Unit, clock_ms: int) -> int | None:
    """The close time of the newest stored candle of `unit` at or before the clock."""
    last = last_close_time(lake, unit)
    if last is None:
        return None
    return min(last, floor_ms(clock_ms, unit.timeframe))


def load_inputs(
    lake: Storage,
    unit: Unit,
    as_of_ms: int | None = None,
    *,
    options: LoadOptions = LoadOptions(),
    now_ms: int | None = None,
) -> PlaybookInputs:
    """The inputs of one playbook: as of `as_of_ms`, or of the newest closed candle.

    Without as_of, staleness is judged at `now_ms` (the wall clock); a given as_of is judged
    at itself.
    """
    clock = wall_clock() if now_ms is None else now_ms
    reference = None
    if as_of_ms is None:
        as_of_ms = latest_as_of(lake, unit, clock)
        if as_of_ms is None:
            floor = floor_ms(clock, unit.timeframe)
            return PlaybookInputs(unit, floor, stale=f"no candles stored before {ms_to_iso(floor)}")
        reference = clock
    history = load_history(lake, unit, [as_of_ms], options)
    return history.inputs_at(as_of_ms, now_ms=reference)
