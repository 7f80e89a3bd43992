"""Backfill of long candle histories: the ingest of each series, with progress for people.

A backfill is an ingest with a required `since`, landing every `BACKFILL_FLUSH_ROWS` candles,
so stopping it (Ctrl-C, a kill, a crash) loses at most that many fetched candles: a restart
plans from what landed (file names and recorded empty ranges) and fetches only the rest.
Progress (series, pages, candles, ETA) goes to every listener of a `Progress` board: the
terminal bar of `vectorflow backfill`, the Prefect progress artifact of the backfill flow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vectorflow.exchanges.client import connect, market_of
from vectorflow.exchanges.clock import exchange_clock
from vectorflow.lake.coverage import SeriesKey, windows_to_fetch
from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import CANDLES
from vectorflow.pipelines.candles import IngestPlan, ingest_series
from vectorflow.pipelines.run import Executor, run_reachable, run_units
from vectorflow.pipelines.signals import note_signals, signals_job
from vectorflow.settings import Settings
from vectorflow.timeframes import floor_ms, timeframe_ms
from vectorflow.units import Unit, UnitResult

BACKFILL_FLUSH_ROWS = 20_000  # a stop loses at most this many fetched candles per series


@dataclass(frozen=True)
class Snapshot:
    """Where a backfill stands.

    `covered` counts the candle slots answered: candles landed, and slots the exchange
    confirmed empty (before a listing, in a halt), which are done as much as a landed candle.
    """

    series_total: int
    series_done: int
    pages: int
    candles: int
    candles_expected: int
    seconds: float
    current: str
    covered: int = 0

    @property
    def fraction(self) -> float:
        """Share of the expected candle slots answered (0..1; series count when none expected)."""
        if self.candles_expected:
            return min(self.covered / self.candles_expected, 1.0)
        return self.series_done / self.series_total if self.series_total else 1.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far (None before the first page)."""
        if not self.covered or self.seconds <= 0:
            return None
        rate = self.covered / self.seconds
        return max(self.candles_expected - self.covered, 0) / rate


@dataclass
class Progress:
    """Thread-safe counters of one backfill, told to listeners on every change.

    `expected` (candle slots per unit, when known) caps each unit's count and tops it up when
    the unit ends ok: what is left then was confirmed empty at the window's end.
    """

    series_total: int
    candles_expected: int
    listeners: list[Callable[[Snapshot], None]] = field(default_factory=list)
    expected: dict[Unit, int] = field(default_factory=dict)
    series_done: int = 0
    pages: int = 0
    candles: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)
    _covered: dict[Unit, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> Snapshot:
        """The counters now."""
        with self._lock:
            return Snapshot(
                self.series_total,
                self.series_done,
                self.pages,
                self.candles,
                self.candles_expected,
                time.monotonic() - self.started,
                self.current,
                sum(self._covered.values()),
            )

    def _tell(self) -> None:
        snap = self.snapshot()
        for listener in list(self.listeners):
            listener(snap)

    def _cover(self, unit: Unit, slots: int) -> None:
        done = self._covered.get(unit, 0) + slots
        self._covered[unit] = min(done, self.expected.get(unit, done))

    def page(self, unit: Unit, candles: int, slots: int, requests: int) -> None:
        """A page of `unit` landed in the buffer, answering `slots` (`ingest_series`'s hook)."""
        with self._lock:
            self.pages += 1
            self.candles += candles
            self.current = unit.label
            self._cover(unit, slots)
        self._tell()

    def finish(self) -> None:
        """Tell the listeners the final counts (the backfill ended)."""
        self._tell()

    def series_finished(self, unit: Unit, ok: bool = True) -> None:
        """`unit` is done: landed (`ok`: every slot it expected is answered) or failed."""
        with self._lock:
            self.series_done += 1
            if ok and unit in self.expected:
                self._cover(unit, self.expected[unit])
        self._tell()


#: Listeners every backfill in this process tells (the command line's terminal bar adds one).
LISTENERS: list[Callable[[Snapshot], None]] = []


def expected_candles(unit: Unit, since_ms: int, until_ms: int, settings: Settings) -> int:
    """Candles a backfill of `unit` has to fetch: closed by `until`, not covered (one request)."""
    client = connect(unit.exchange, settings)  # markets from the cache
    market = market_of(client, unit.symbol, unit.market)
    until_ms = min(until_ms, exchange_clock(client)())  # no candle closes after the exchange's now
    values = {
        "exchange": unit.exchange,
        "market": unit.market,
        "symbol_id": market["id"],
        "timeframe": unit.timeframe,
    }
    folder = partition_dir(settings.storage.root, CANDLES, values)
    key = SeriesKey(
        "candles", unit.exchange, unit.market, unit.symbol, market["id"], unit.timeframe
    )
    step = timeframe_ms(unit.timeframe)
    total = 0
    coverage = key.folder(settings.storage.root)
    windows = windows_to_fetch(settings.storage, folder, coverage, since_ms, until_ms, unit.label)
    for start, end in windows:
        total += max(0, (floor_ms(end - step, unit.timeframe) - start) // step + 1)
    return total


def backfill_series(
    unit: Unit,
    since_ms: int,
    until_ms: int,
    settings: Settings,
    progress: Progress | None = None,
) -> UnitResult:
    """Ingest one series over [since, until), landing often, telling `progress` each page."""
    small = settings.with_overrides(flush_rows=min(settings.flush_rows, BACKFILL_FLUSH_ROWS))
    ok = False
    try:
        result = ingest_series(
            unit, since_ms, until_ms, small, on_page=progress.page if progress else None
        )
        ok = result.ok
        return result
    finally:
        if progress is not None:
            progress.series_finished(unit, ok)


def backfill_job(
    settings: Settings,
    plan: IngestPlan,
    executor: Executor,
    listeners: list[Callable[[Snapshot], None]] = (),
) -> list[UnitResult]:
    """Backfill every unit of `plan` (`since` required), telling `listeners` (and `LISTENERS`)
    the progress, then bring the signals of the series that landed rows up to date; one result
    per unit."""
    since, until = plan.since_ms, plan.until_ms

    def work(units: list[Unit]) -> list[UnitResult]:
        expected = executor.map(expected_candles, [(u, since, until, settings) for u in units])
        estimated = list(zip(units, expected, strict=True))
        failed = [UnitResult.of_error(u, e) for u, e in estimated if isinstance(e, BaseException)]
        known = {u: e for u, e in estimated if not isinstance(e, BaseException)}
        todo = list(known)
        progress = Progress(len(todo), sum(known.values()), [*listeners, *LISTENERS], known)
        results = run_units(executor, backfill_series, todo, since, until, settings, progress)
        progress.finish()
        return results + failed

    results = run_reachable(executor, plan.units, settings, work)
    # older candles change every later bar's signals (Wilder smoothing runs from the first)
    landed = [r.unit for r in results if r.ok and r.rows_written]
    note_signals(results, signals_job(settings, landed, executor),
                 lambda u: (u.exchange, u.symbol, u.timeframe))  # fmt: skip
    return results
