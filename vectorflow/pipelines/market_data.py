"""Order books, open interest and funding as library code: plan the units, land each one.

Every unit lands or fails alone, like a candle series (`vectorflow.pipelines.candles`):

- `orderbook_levels`: one snapshot of the top N levels per side, per (exchange, market, symbol);
- `open_interest`: the history of a perpetual at one period, incremental, within Binance's
  30-day horizon (the part before it is never asked for);
- `funding_rates`: the funding history of a perpetual, incremental.

Open interest and funding resume after what is stored; a first run without `since` starts
the settings' `[series] first_run_days` back (30). What they ask is the window minus what is
stored or known empty (the same coverage as candles), so a perpetual listed after `since` is
asked once for the range before its listing, which is then recorded as empty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vectorflow.errors import CircuitOpen, InvalidInput
from vectorflow.exchanges import funding as fx_funding
from vectorflow.exchanges import open_interest as fx_oi
from vectorflow.exchanges.client import connect, market_of
from vectorflow.exchanges.clock import exchange_clock
from vectorflow.exchanges.orderbook import DEFAULT_LEVELS, book_table, fetch_order_book
from vectorflow.lake import store
from vectorflow.lake.coverage import SeriesKey, empty_spans, record_empty, windows_to_fetch
from vectorflow.lake.files import partition_dir
from vectorflow.lake.reads import times_of
from vectorflow.lake.schema import FUNDING_RATES, OPEN_INTEREST, ORDERBOOK_LEVELS, Dataset
from vectorflow.pipelines.candles import plan_ingest
from vectorflow.pipelines.orderbook_stream import capture_unit, check_capture
from vectorflow.pipelines.run import Executor, run_reachable, run_units
from vectorflow.pipelines.signals import derivative_series, note_signals, signals_job
from vectorflow.settings import Settings
from vectorflow.timeframes import ms_to_iso, now_ms, timeframe_ms
from vectorflow.units import Status, Unit, UnitResult
from vectorflow.values import count

log = logging.getLogger(__name__)

MARKET_DATASETS = ("orderbook_levels", "open_interest", "funding_rates")
DEFAULT_PERIOD = "5m"
FUNDING_GAP_MS = 8 * 3_600_000


@dataclass(frozen=True)
class MarketPlan:
    """A validated request: its units and the half-open window [since, until) in UTC ms."""

    units: tuple[Unit, ...]
    since_ms: int | None
    until_ms: int
    levels: int = DEFAULT_LEVELS  # order book levels per side


def plan_market_data(
    exchanges: Sequence[str],
    markets: Sequence[str] | None,
    symbols: Sequence[str],
    datasets: Sequence[str],
    *,
    period: str = DEFAULT_PERIOD,
    levels: int = DEFAULT_LEVELS,
    since: str | int | None = None,
    until: str | int | None = None,
) -> MarketPlan:
    """Validate a request (InvalidInput names the bad value) and list its units.

    Order books are taken for every symbol; open interest and funding for perpetuals only.
    """
    unknown = [d for d in datasets if d not in MARKET_DATASETS]
    if unknown or not datasets:
        named = ", ".join(unknown) or "(none)"
        raise InvalidInput(f"unknown dataset {named}; expected {', '.join(MARKET_DATASETS)}")
    timeframe_ms(period)
    levels = count(levels, name="levels", maximum=1000)  # order book levels per side
    plan = plan_ingest(exchanges, markets, symbols, ["1h"], since, until)
    units = []
    for dataset in dict.fromkeys(datasets):
        for u in plan.units:
            if dataset != "orderbook_levels" and u.market != "linear":
                continue
            step = period if dataset == "open_interest" else None
            units.append(Unit(u.exchange, u.market, u.symbol, step, dataset))
    if not units:
        raise InvalidInput("open interest and funding exist for perpetuals only (BTC/USDT:USDT)")
    return MarketPlan(tuple(units), plan.since_ms, plan.until_ms, levels)


def _append(settings: Settings, dataset: Dataset, folder, table: pa.Table) -> list[store.Written]:
    return store.append(settings.storage, dataset, folder, table, **settings.lake.append_options())


def land_order_book(
    unit: Unit, settings: Settings, report: UnitResult, clock: Callable[[], int], levels: int
) -> None:
    """Take one snapshot of the top `levels` of the unit's book and land it."""
    client = connect(unit.exchange, settings)
    market = market_of(client, unit.symbol, unit.market)
    book = fetch_order_book(client, market, levels, clock=clock)
    report.requests += 1
    table = book_table(book, now_ms())
    values = {"exchange": unit.exchange, "market": unit.market, "symbol_id": market["id"]}
    folder = partition_dir(settings.storage.root, ORDERBOOK_LEVELS, values)
    _landed(report, table, ORDERBOOK_LEVELS, _append(settings, ORDERBOOK_LEVELS, folder, table))


def _oi_table(unit: Unit, page: fx_oi.OpenInterest, binance: bool) -> pa.Table:
    n = len(page["time"])
    value = page["open_interest_value"]
    return pa.table(
        {
            "exchange": [unit.exchange] * n,
            "symbol": [unit.symbol] * n,
            "period": [unit.timeframe] * n,
            "time": pa.array(page["time"]).cast(pa.timestamp("ms")),
            "open_interest": page["open_interest"],
            "open_interest_value": pa.array(value, pa.float64(), mask=np.isnan(value)),
            "value_source": ["exchange" if binance else "close_price"] * n,
            "ingested_at": pa.array(np.full(n, now_ms())).cast(pa.timestamp("ms")),
        },
        schema=OPEN_INTEREST.schema,
    )


def _funding_table(unit: Unit, page: fx_funding.Funding, hours: np.ndarray) -> pa.Table:
    n = len(page["funding_time"])
    mark = page["mark_price"]
    return pa.table(
        {
            "exchange": [unit.exchange] * n,
            "symbol": [unit.symbol] * n,
            "funding_time": pa.array(page["funding_time"]).cast(pa.timestamp("ms")),
            "funding_rate": page["funding_rate"],
            "interval_hours": hours,
            "mark_price": pa.array(mark, pa.float64(), mask=np.isnan(mark)),
            "ingested_at": pa.array(np.full(n, now_ms())).cast(pa.timestamp("ms")),
        },
        schema=FUNDING_RATES.schema,
    )


@dataclass
class _Series:
    """Where a history unit lands and what it asks for: the parts shared by OI and funding."""

    unit: Unit
    settings: Settings
    dataset: Dataset
    folder: object
    key: SeriesKey

    def windows(self, since_ms: int | None, until_ms: int, now: int) -> list[tuple[int, int]]:
        coverage = self.key.folder(self.settings.storage.root)
        first = self.settings.series.first_since_ms(now)  # a first run: `first_run_days` back
        return windows_to_fetch(
            self.settings.storage,
            self.folder, coverage, since_ms, until_ms, self.unit.label, first_since_ms=first
        )

    def land(self, table: pa.Table, report: UnitResult) -> None:
        written = _append(self.settings, self.dataset, self.folder, table)
        _landed(report, table, self.dataset, written)


def _series(unit: Unit, settings: Settings, market: dict, dataset: Dataset) -> _Series:
    series = unit.timeframe or "all"  # open interest: its period
    values = {"exchange": unit.exchange, "symbol_id": market["id"], "period": series}
    folder = partition_dir(settings.storage.root, dataset, values)
    key = SeriesKey(dataset.name, unit.exchange, "linear", unit.symbol, market["id"], series)
    return _Series(unit, settings, dataset, folder, key)


def land_open_interest(
    unit: Unit,
    since_ms: int | None,
    until_ms: int,
    settings: Settings,
    report: UnitResult,
    clock: Callable[[], int],
) -> None:
    """Land the open interest history the unit is missing in [since, until)."""
    client = connect(unit.exchange, settings)
    market = market_of(client, unit.symbol, "linear")
    clock = exchange_clock(client, clock)  # the horizon is the exchange's 30 days
    series = _series(unit, settings, market, OPEN_INTEREST)
    step = timeframe_ms(unit.timeframe)
    endpoint = fx_oi.market_data_spec(unit.exchange).open_interest
    stats = fx_oi.OpenInterestStats()
    for start, end in series.windows(since_ms, until_ms, clock()):
        start = fx_oi.usable_since(endpoint, start, unit.timeframe, clock())
        times = []
        for page in fx_oi.fetch_open_interest(
            client, market, unit.timeframe, start, end, stats=stats, clock=clock
        ):
            page, kline_requests = fx_oi.add_values_from_closes(
                client, market, unit.timeframe, page, clock=clock
            )
            report.requests += kline_requests
            series.land(_oi_table(unit, page, unit.exchange == "binance"), report)
            times.append(page["time"])
        if times:  # before the first row: before the listing (later holes: the exchange's gaps)
            seen = np.concatenate(times)
            spans = empty_spans(seen, start, int(seen[-1]), step, min_ms=step)
            record_empty(settings, series.key, spans)
    report.requests += stats.requests


def land_funding(
    unit: Unit,
    since_ms: int | None,
    until_ms: int,
    settings: Settings,
    report: UnitResult,
    clock: Callable[[], int],
) -> None:
    """Land the funding history the unit is missing in [since, until)."""
    client = connect(unit.exchange, settings)
    market = market_of(client, unit.symbol, "linear")
    clock = exchange_clock(client, clock)
    series = _series(unit, settings, market, FUNDING_RATES)
    current = fx_funding.current_interval_hours(client, market)
    stats = fx_funding.FundingStats()
    for start, end in series.windows(since_ms, until_ms, clock()):
        pages = list(fx_funding.fetch_funding(client, market, start, end, stats=stats))
        if not pages:
            continue
        page = {k: np.concatenate([p[k] for p in pages]) for k in pages[0]}
        stored = settings.storage.stored_range(series.folder, FUNDING_RATES)
        previous = stored[1] if stored and stored[1] < int(page["funding_time"][0]) else None
        hours = fx_funding.interval_hours(page["funding_time"], previous, current)
        series.land(_funding_table(unit, page, hours), report)
        first = int(page["funding_time"][0])
        if previous is None and first - start > FUNDING_GAP_MS:  # asked before the listing
            record_empty(settings, series.key, [(start, first - FUNDING_GAP_MS)])
    report.requests += stats.requests


def ingest_market_unit(
    unit: Unit,
    since_ms: int | None,
    until_ms: int,
    settings: Settings,
    levels: int = DEFAULT_LEVELS,
    *,
    clock: Callable[[], int] = now_ms,
) -> UnitResult:
    """Land one unit; raises the classified error of a failure (what landed before stays).

    `levels`: order book levels per side. A call refused by an open breaker ends it `skipped`.
    """
    started = time.monotonic()
    report = UnitResult(unit)
    try:
        if unit.dataset == "orderbook_levels":
            land_order_book(unit, settings, report, clock, levels)
        elif unit.dataset == "open_interest":
            land_open_interest(unit, since_ms, until_ms, settings, report, clock)
        else:
            land_funding(unit, since_ms, until_ms, settings, report, clock)
    except CircuitOpen as exc:
        report.status, report.error = Status.SKIPPED, str(exc)
        log.warning("%s: skipped: %s", unit.label, exc)
    except Exception as exc:
        if report.rows_written:
            exc.add_note(f"{report.rows_written} rows landed before the failure")
        raise
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _landed(report: UnitResult, table: pa.Table, dataset: Dataset, written) -> None:
    """Count what a write of `table` added."""
    t = times_of(table, dataset)
    new_rows = sum(w.new_rows for w in written)
    first, last = ms_to_iso(int(t.min())), ms_to_iso(int(t.max()))
    report.landed(new_rows, first, last, [w.path for w in written])


def market_data_job(
    settings: Settings,
    plan: MarketPlan,
    executor: Executor,
    *,
    mode: str = "rest",
    stream_seconds: float = 60.0,
    stream_every: str = "1s",
) -> list[UnitResult]:
    """Land every unit of `plan` (each exchange's markets loaded once first); one result each.
    Then the signals of the perpetuals whose open interest or funding landed rows are brought
    up to date (`signal_rows` on those units).

    `mode="stream"`: order book units keep their book from the WebSocket stream for
    `stream_seconds`, landing a snapshot every `stream_every`, instead of one REST snapshot.
    """
    if mode not in ("rest", "stream"):
        raise InvalidInput(f"mode {mode!r}: expected rest or stream")
    streamed = [u for u in plan.units if mode == "stream" and u.dataset == "orderbook_levels"]
    for unit in streamed:
        check_capture(unit.exchange, unit.market, stream_seconds, plan.levels, stream_every)

    def work(units: list[Unit]) -> list[UnitResult]:
        fetch = [u for u in units if u not in streamed]
        window = (plan.since_ms, plan.until_ms, settings)
        results = run_units(executor, ingest_market_unit, fetch, *window, plan.levels)
        stream = [u for u in units if u in streamed]
        options = (settings, stream_seconds, stream_every, plan.levels)
        return results + run_units(executor, capture_unit, stream, *options)

    results = run_reachable(executor, plan.units, settings, work)
    # new open interest or funding rows make the bars they cover stale
    signals = signals_job(settings, derivative_series(settings, results), executor)
    note_signals(results, signals, lambda u: (u.exchange, u.symbol))
    return results
