"""Bounded order book capture from a WebSocket stream into `orderbook_levels` (source 'stream').

`capture_order_book` checks the request, loads the markets through the guarded REST client,
keeps the book from the exchange's stream for `seconds` (`vectorflow.exchanges.stream`) and
lands a snapshot of the top `depth` levels every `every` (one `orderbook_levels` snapshot per
cadence tick at which the book changed; its `snapshot_time` is the exchange time of the last
update applied: Binance `E`, Bybit `ts`). Rows are written in batches while the capture runs,
so a crash loses at most one batch.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass

import pyarrow as pa

from vectorflow.errors import CircuitOpen, InvalidInput
from vectorflow.exchanges import stream
from vectorflow.exchanges.client import connect, market_of
from vectorflow.exchanges.orderbook import OrderBook, book_table
from vectorflow.lake import store
from vectorflow.lake.files import partition_dir
from vectorflow.lake.reads import times_of
from vectorflow.lake.schema import ORDERBOOK_LEVELS
from vectorflow.resilience.guard import guard_for
from vectorflow.settings import EXCHANGES, Settings
from vectorflow.timeframes import ms_to_iso, now_ms
from vectorflow.units import Status, Unit, UnitResult

log = logging.getLogger(__name__)

MAX_SECONDS = 86_400.0
BATCH_SNAPSHOTS = 60  # snapshots buffered before a file is written
_EVERY = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")


@dataclass
class CaptureReport:
    """What one capture did: counts, rows landed, first/last snapshot time, or its error."""

    exchange: str
    market: str
    symbol: str
    depth: int
    updates: int = 0
    resyncs: int = 0
    reconnects: int = 0
    snapshots_written: int = 0
    rows_written: int = 0
    first: str | None = None
    last: str | None = None
    requests: int = 0
    seconds: float = 0.0
    url: str | None = None

    def as_row(self) -> dict:
        """The report as a flat dict."""
        return asdict(self)

    def summary(self) -> str:
        """One line for people: `bybit linear BTC/USDT:USDT: 512 updates, ...`."""
        return (
            f"{self.exchange} {self.market} {self.symbol}: {self.updates} updates received, "
            f"{self.resyncs} resyncs, {self.reconnects} reconnects, {self.snapshots_written} "
            f"snapshots written ({self.rows_written} rows, top {self.depth} levels) in "
            f"{self.seconds:.1f} s"
        )


def parse_every(text: str) -> float:
    """A cadence such as `1s`, `500ms`, `2.5s`, `1m` in seconds; InvalidInput otherwise."""
    found = _EVERY.match(str(text).strip())
    if not found or float(found.group(1)) <= 0:
        raise InvalidInput(f"--every {text!r}: give a duration such as 500ms, 1s or 1m")
    value = float(found.group(1))
    return value / 1000 if found.group(2) == "ms" else value * (60 if found.group(2) == "m" else 1)


def check_capture(exchange: str, market: str, seconds: float, depth: int, every: str) -> float:
    """Validate a capture request (InvalidInput names the bad value); the cadence in seconds."""
    if exchange not in EXCHANGES:
        raise InvalidInput(f"unknown exchange {exchange!r}; expected {', '.join(EXCHANGES)}")
    if market not in ("spot", "linear"):
        raise InvalidInput(f"unknown market {market!r}; expected spot or linear")
    if not 0 < seconds <= MAX_SECONDS:
        raise InvalidInput(f"--seconds {seconds:g}: give 0 < seconds <= {MAX_SECONDS:g}")
    if not 1 <= depth <= stream.MAX_DEPTH:
        raise InvalidInput(f"--depth {depth}: give 1 to {stream.MAX_DEPTH} levels per side")
    return parse_every(every)


class _Lander:
    """Buffers snapshots and lands them in batches (one partition per capture)."""

    def __init__(self, settings: Settings, folder, report: CaptureReport) -> None:
        self.settings, self.folder, self.report = settings, folder, report
        self.tables: list[pa.Table] = []
        self.lock = threading.Lock()

    def add(self, book: OrderBook) -> None:
        self.tables.append(book_table(book, now_ms()))

    def full(self) -> bool:
        return len(self.tables) >= BATCH_SNAPSHOTS

    def flush(self) -> None:
        """Write what is buffered (called from a worker thread or at the end)."""
        with self.lock:
            tables, self.tables = self.tables, []
            if not tables:
                return
            table = pa.concat_tables(tables)
            written = store.append(
                self.settings.storage, ORDERBOOK_LEVELS, self.folder, table,
                **self.settings.lake.append_options(),
            )  # fmt: skip
            times = times_of(table, ORDERBOOK_LEVELS)
            report = self.report
            report.rows_written += sum(w.new_rows for w in written)
            report.snapshots_written += len(tables)
            report.first = report.first or ms_to_iso(int(times.min()))
            report.last = ms_to_iso(int(times.max()))


async def _run(client, market: dict, lander: _Lander, settings: Settings, **options):
    pending: list[asyncio.Future] = []

    def on_snapshot(book: OrderBook) -> None:
        lander.add(book)
        if lander.full():  # write off the event loop so the stream keeps being read
            pending.append(asyncio.ensure_future(asyncio.to_thread(lander.flush)))

    guard = guard_for(settings)
    policy = guard.policy
    try:
        return await stream.capture(
            client,
            market,
            on_snapshot=on_snapshot,
            breakers=guard.breakers,
            backoff=policy.delay,
            max_attempts=policy.attempts,
            **options,
        )
    finally:
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await client.close()


def capture_order_book(
    exchange: str,
    market: str,
    symbol: str,
    settings: Settings,
    *,
    seconds: float,
    depth: int = 50,
    every: str = "1s",
) -> CaptureReport:
    """Capture one book from its stream for `seconds` into the lake; raises a classified error."""
    every_s = check_capture(exchange, market, seconds, depth, every)
    started = time.monotonic()
    report = CaptureReport(exchange, market, symbol, depth)
    sync_client = connect(exchange, settings)
    found = market_of(sync_client, symbol, market)
    values = {"exchange": exchange, "market": market, "symbol_id": found["id"]}
    folder = partition_dir(settings.storage.root, ORDERBOOK_LEVELS, values)
    lander = _Lander(settings, folder, report)

    async def main():
        client = stream.stream_client(exchange, settings, sync_client)
        report.url = await stream.stream_url(client, found)
        return await _run(
            client, found, lander, settings, seconds=seconds, depth=depth, every_s=every_s
        )

    try:
        stats = asyncio.run(main())
    finally:
        lander.flush()  # what was captured lands, also when the capture failed
        report.seconds = round(time.monotonic() - started, 3)
    report.updates, report.resyncs = stats.updates, stats.resyncs
    report.reconnects, report.requests = stats.reconnects, stats.requests
    log.info("%s", report.summary())
    return report


def capture_unit(
    unit: Unit, settings: Settings, seconds: float, every: str, levels: int
) -> UnitResult:
    """Capture the book of an `orderbook_levels` unit for `seconds` (top `levels` per side, a
    snapshot every `every`); its result. An open breaker makes it `skipped`; any other failure
    is raised (classified)."""
    try:
        report = capture_order_book(
            unit.exchange, unit.market, unit.symbol, settings,
            seconds=seconds, depth=levels, every=every,
        )  # fmt: skip
    except CircuitOpen as exc:
        log.warning("%s: skipped: %s", unit.label, exc)
        return UnitResult(unit, Status.SKIPPED, error=str(exc))
    counts = ("updates", "resyncs", "reconnects", "snapshots_written")
    result = UnitResult(
        unit, requests=report.requests, seconds=report.seconds,
        detail={name: getattr(report, name) for name in counts},
    )  # fmt: skip
    result.landed(report.rows_written, report.first, report.last)
    return result
