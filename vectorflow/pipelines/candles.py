"""Candle ingest as library code: plan the units of a request, then land each series in the lake."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vectorflow.errors import CircuitOpen, InvalidInput, PermanentError
from vectorflow.exchanges.client import connect, market_of
from vectorflow.exchanges.klines import Candles, FetchStats, fetch_closed_candles
from vectorflow.exchanges.specs import MARKETS, exchange_spec, implied_market
from vectorflow.lake import store
from vectorflow.lake.coverage import SeriesKey, record_empty, windows_to_fetch
from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import CANDLES
from vectorflow.pipelines.run import Executor, run_reachable, run_units
from vectorflow.settings import Settings
from vectorflow.timeframes import floor_ms, ms_to_iso, now_ms, parse_time, timeframe_ms
from vectorflow.units import Status, Unit, UnitResult

#: A candle that closed less than this long ago and is missing may still be on its way: the
#: end of a window is recorded as empty only up to here
PUBLISH_LAG_MS = 120_000

#: Called after each landed page of a series: (unit, candles in the page, candle slots the page
#: answered: its candles and the empty slots the exchange skipped before them, requests so far).
PageHook = Callable[["Unit", int, int, int], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestPlan:
    """A validated ingest request: the units and the half-open window [since, until) in UTC ms."""

    units: tuple[Unit, ...]
    since_ms: int | None
    until_ms: int


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def plan_ingest(
    exchanges: Sequence[str],
    markets: Sequence[str] | None,
    symbols: Sequence[str],
    timeframes: Sequence[str],
    since: str | int | None = None,
    until: str | int | None = None,
    *,
    now: int | None = None,
) -> IngestPlan:
    """Validate a request as a whole (InvalidInput names the bad value) and list its units."""
    now = now_ms() if now is None else now
    exchanges, symbols, timeframes = _unique(exchanges), _unique(symbols), _unique(timeframes)
    markets = _unique(markets or MARKETS)
    for name, values in (("exchange", exchanges), ("symbol", symbols), ("timeframe", timeframes)):
        if not values:
            raise InvalidInput(f"no {name} given")
    for exchange in exchanges:
        exchange_spec(exchange)
    for market in markets:
        if market not in MARKETS:
            raise InvalidInput(f"unknown market {market!r}; expected one of {', '.join(MARKETS)}")
    for timeframe in timeframes:
        timeframe_ms(timeframe)
    implied = {symbol: implied_market(symbol) for symbol in symbols}
    wrong = [s for s, m in implied.items() if m not in markets]
    if len(wrong) == len(symbols):
        raise InvalidInput(
            f"no symbol is in the requested market(s) {', '.join(markets)}: {', '.join(wrong)}"
            " (BTC/USDT is spot, BTC/USDT:USDT linear)"
        )
    since_ms = None if since in (None, "") else parse_time(since, name="since")
    until_ms = now if until in (None, "") else parse_time(until, name="until")
    if since_ms is not None and since_ms >= now:
        raise InvalidInput(f"since {ms_to_iso(since_ms)} is in the future (now {ms_to_iso(now)})")
    if since_ms is not None and since_ms >= until_ms:
        raise InvalidInput(f"since {ms_to_iso(since_ms)} is not before until {ms_to_iso(until_ms)}")
    units = tuple(
        Unit(exchange, implied[symbol], symbol, timeframe)
        for exchange in exchanges
        for symbol in symbols
        if implied[symbol] in markets
        for timeframe in timeframes
    )
    return IngestPlan(units=units, since_ms=since_ms, until_ms=min(until_ms, now))


def candles_table(unit: Unit, chunks: list[Candles], ingested_at_ms: int) -> pa.Table:
    """Arrow table in the pinned candles schema from validated candle arrays."""
    cols = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    n = len(cols["open_time"])
    trades = cols["trades"]
    taker = cols["taker_buy_volume"]
    arrays = {
        "exchange": pa.array([unit.exchange] * n, pa.string()),
        "market": pa.array([unit.market] * n, pa.string()),
        "symbol": pa.array([unit.symbol] * n, pa.string()),
        "timeframe": pa.array([unit.timeframe] * n, pa.string()),
        "open_time": pa.array(cols["open_time"], pa.int64()).cast(pa.timestamp("ms")),
        **{k: pa.array(cols[k], pa.float64()) for k in ("open", "high", "low", "close", "volume")},
        "quote_volume": pa.array(cols["quote_volume"], pa.float64()),
        "trades": pa.array(
            np.nan_to_num(trades).astype(np.int64), pa.int64(), mask=np.isnan(trades)
        ),
        "taker_buy_volume": pa.array(taker, pa.float64(), mask=np.isnan(taker)),
        "ingested_at": pa.array(np.full(n, ingested_at_ms), pa.int64()).cast(pa.timestamp("ms")),
    }
    return pa.Table.from_pydict(arrays, schema=CANDLES.schema)


class _SeriesWriter:
    """Buffers validated pages of one series and lands them in the lake every `flush_rows` rows.

    Also notes the ranges of its window the exchange answered without candles (`empty`).
    """

    def __init__(
        self,
        unit: Unit,
        folder,
        report: UnitResult,
        settings: Settings,
        window_start: int,
        previous_last: int | None,
    ):
        self.unit, self.folder, self.report, self.settings = unit, folder, report, settings
        self.flush_rows = settings.flush_rows
        self.step = timeframe_ms(unit.timeframe)
        self.chunks: list[Candles] = []
        self.buffered = 0
        self.previous = previous_last
        self.reached = window_start  # the window is answered up to here (exclusive)
        self.empty: list[tuple[int, int]] = []

    def add(self, page: Candles) -> int:
        """Buffer a page (landing every `flush_rows`); the candle slots it answered."""
        times = page["open_time"]
        reached_before = self.reached
        expected = np.r_[
            self.previous + self.step if self.previous is not None else times[0],
            times[:-1] + self.step,
        ]
        self.report.detail["gaps"] += int(((times - expected) // self.step).clip(min=0).sum())
        starts = np.r_[self.reached, times[:-1] + self.step]
        holes = np.flatnonzero(times > starts)
        self.empty += [(int(starts[i]), int(times[i])) for i in holes]
        self.reached = int(times[-1]) + self.step
        self.previous = int(times[-1])
        self.chunks.append(page)
        self.buffered += len(times)
        if self.buffered >= self.flush_rows:
            self.flush()
        return (self.reached - reached_before) // self.step

    def flush(self) -> None:
        if not self.chunks:
            return
        table = candles_table(self.unit, self.chunks, now_ms())
        first = int(self.chunks[0]["open_time"][0])
        last = int(self.chunks[-1]["open_time"][-1])
        written = store.append(
            self.settings.storage, CANDLES, self.folder, table,
            **self.settings.lake.append_options(),
        )  # fmt: skip
        new_rows = sum(w.new_rows for w in written)
        self.report.landed(new_rows, ms_to_iso(first), ms_to_iso(last), [w.path for w in written])
        self.chunks, self.buffered = [], 0

    def end_range(self, confirmed_until: int | None, key: SeriesKey) -> None:
        """Flush, and record the empty ranges seen (up to `confirmed_until` if the window ended)."""
        self.flush()
        self.previous = None
        if confirmed_until is not None and confirmed_until > self.reached:
            self.empty.append((self.reached, confirmed_until))
        record_empty(self.settings, key, self.empty)
        self.empty = []


def ingest_series(
    unit: Unit,
    since_ms: int | None,
    until_ms: int,
    settings: Settings,
    *,
    clock: Callable[[], int] = now_ms,
    on_page: PageHook | None = None,
) -> UnitResult:
    """Fetch the closed candles `unit` is missing in [since, until) and land them in the lake.

    What is missing is [since, until) minus what is stored or known empty (without since: what
    follows it). Ranges the exchange answers without candles are recorded as empty and not
    asked for again. Raises the classified error of the first failure; pages validated before
    it have landed. A call refused by an open circuit breaker ends the unit as `skipped`.
    """
    started = time.monotonic()
    report = UnitResult(unit, detail={"gaps": 0})
    stats = FetchStats()
    try:
        client = connect(unit.exchange, settings)
        market = market_of(client, unit.symbol, unit.market)
        if unit.timeframe not in client.timeframes:
            raise PermanentError(f"{unit.exchange} has no {unit.timeframe!r} candles")
        folder = partition_dir(
            settings.storage.root,
            CANDLES,
            {
                "exchange": unit.exchange,
                "market": unit.market,
                "symbol_id": market["id"],
                "timeframe": unit.timeframe,
            },
        )
        key = SeriesKey(
            "candles", unit.exchange, unit.market, unit.symbol, market["id"], unit.timeframe
        )
        windows = windows_to_fetch(
            settings.storage,
            folder,
            key.folder(settings.storage.root),
            since_ms,
            until_ms,
            unit.label,
            first_since_ms=settings.series.first_since_ms(until_ms),
        )
        step = timeframe_ms(unit.timeframe)
        stored = settings.storage.stored_range(folder, CANDLES) if windows else None
        for start, end in windows:
            start = floor_ms(start + step - 1, unit.timeframe)  # first open time in the window
            after_candle = stored is not None and stored[1] == start - step  # gaps count from it
            previous = start - step if after_candle else None
            writer = _SeriesWriter(unit, folder, report, settings, start, previous)
            stats.server_now, confirmed = None, None
            try:
                for page in fetch_closed_candles(
                    client, market, unit.timeframe, start, end, stats=stats, clock=clock
                ):
                    answered = writer.add(page)
                    if on_page is not None:
                        on_page(unit, len(page["open_time"]), answered, stats.requests)
                if stats.server_now is not None:  # the window was answered to its end
                    settled = stats.server_now - PUBLISH_LAG_MS
                    confirmed = min(end, floor_ms(settled, unit.timeframe))
            finally:
                writer.end_range(confirmed, key)  # what was validated lands even on a failure
    except CircuitOpen as exc:
        report.status, report.error = Status.SKIPPED, str(exc)
        log.warning("%s: skipped: %s", unit.label, exc)
    except Exception as exc:
        if report.rows_written:
            exc.add_note(f"{report.rows_written} rows landed before the failure")
        raise
    report.requests = stats.requests
    report.seconds = round(time.monotonic() - started, 3)
    return report


def ingest_job(settings: Settings, plan: IngestPlan, executor: Executor) -> list[UnitResult]:
    """Land every unit of `plan` (each exchange's markets loaded once first), then bring the
    signals of the series that landed rows up to date; one result per unit.

    Signals run after every unit, so that a series' finer candles (its TPO input) have landed.
    A signals failure is noted on its series' row; the candles stay landed.
    """
    window = (plan.since_ms, plan.until_ms, settings)

    def work(units: list[Unit]) -> list[UnitResult]:
        return run_units(executor, ingest_series, units, *window)

    results = run_reachable(executor, plan.units, settings, work)
    landed = [r.unit for r in results if r.ok and r.rows_written]
    if landed:  # a run that landed nothing imports no signal code (pandas, ~0.3 s)
        from vectorflow.pipelines.signals import note_signals, signals_job

        signals = signals_job(settings, landed, executor)
        note_signals(results, signals, lambda u: (u.exchange, u.symbol, u.timeframe))
    return results
