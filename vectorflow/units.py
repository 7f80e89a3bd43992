"""The unit of work every pipeline, flow and command shares, and what became of it.

A `Unit` is one series of one dataset (`binance spot BTC/USDT 1h` candles, the open interest of
a perpetual at 5m, ...): it lands or fails on its own. A `UnitResult` says what it did, with a
`Status` from one small enum: `ok` (done, possibly with nothing new), `skipped` (not attempted:
an open circuit breaker, inputs too old) or `failed` (the error names why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from vectorflow.errors import CircuitOpen, VectorflowError


class Status(StrEnum):
    """What became of a unit."""

    OK = "ok"
    SKIPPED = "skipped"  # not attempted: an open circuit breaker, stale inputs
    FAILED = "failed"


@dataclass(frozen=True)
class Unit:
    """One series of one dataset: the unit that lands or fails alone.

    `timeframe` is the series' step: the candle timeframe (candles, signals, playbooks,
    backtests) or the open-interest period; None where a dataset has none (order books,
    funding rates).
    """

    exchange: str
    market: str
    symbol: str
    timeframe: str | None = None
    dataset: str = "candles"

    @property
    def label(self) -> str:
        """Human-readable name: `binance spot BTC/USDT 1h`, `bybit linear X funding_rates`."""
        parts = [self.exchange, self.market, self.symbol]
        if self.dataset not in SERIES_DATASETS:
            parts.append(self.dataset)
        if self.timeframe:
            parts.append(self.timeframe)
        return " ".join(parts)

    def fields(self) -> dict[str, str | None]:
        """The unit as row fields."""
        return {
            "exchange": self.exchange,
            "market": self.market,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "dataset": self.dataset,
        }


#: Datasets whose units are candle series: their label needs no dataset name.
SERIES_DATASETS = frozenset({"candles", "signals", "playbooks", "backtests"})


def error_text(error: BaseException) -> str:
    """`Type: message (notes)`: what a result row says of an exception."""
    notes = "; ".join(getattr(error, "__notes__", []))
    text = f"{type(error).__name__}: {error}"
    return f"{text} ({notes})" if notes else text


@dataclass
class UnitResult:
    """What one unit did: rows written, the time range they cover, requests made, or why not.

    `detail` holds a pipeline's own figures (gaps, signal rows, playbook bias, ...), shown as
    extra columns after the common ones.
    """

    unit: Unit
    status: Status = Status.OK
    rows_written: int = 0
    first: str | None = None  # first and last time landed (UTC ISO)
    last: str | None = None
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None
    detail: dict[str, object] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @classmethod
    def of_error(cls, unit: Unit, error: BaseException) -> UnitResult:
        """The result of a unit that raised: skipped by an open circuit, else failed."""
        if isinstance(error, CircuitOpen):
            return cls(unit, Status.SKIPPED, error=str(error))
        return cls(unit, Status.FAILED, error=error_text(error))

    @property
    def ok(self) -> bool:
        """True when the unit did its work."""
        return self.status == Status.OK

    def landed(self, rows: int, first: str | None, last: str | None, files=()) -> None:
        """Count `rows` landed over [first, last] (UTC ISO times) in `files`."""
        self.rows_written += rows
        self.files += [str(f) for f in files]
        self.first = min(filter(None, [self.first, first]), default=None)
        self.last = max(filter(None, [self.last, last]), default=None)

    def as_row(self) -> dict:
        """A flat dict for tables, artifacts and JSON: status first, the error last."""
        unit = {k: v for k, v in self.unit.fields().items() if v is not None}
        return {
            "status": str(self.status),
            **unit,
            "rows_written": self.rows_written,
            "first": self.first,
            "last": self.last,
            "requests": self.requests,
            "seconds": self.seconds,
            **self.detail,
            "error": self.error,
        }


def result_of(unit: Unit, outcome: object) -> UnitResult:
    """A unit's result from what its work returned or raised."""
    if isinstance(outcome, UnitResult):
        return outcome
    if isinstance(outcome, BaseException):
        return UnitResult.of_error(unit, outcome)
    raise TypeError(f"{unit.label}: expected a UnitResult or an exception, got {outcome!r}")


class UnitsFailed(VectorflowError):
    """Some units of a run failed (the others landed); `result`: what the run returns otherwise
    (every unit's row; a backtest's summary; the nightly's steps and series)."""

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


def run_message(results: list[UnitResult]) -> str | None:
    """What a run says of its failed and skipped units; None when every unit is ok."""
    failed = [r.unit.label for r in results if r.status == Status.FAILED]
    skipped = [r.unit.label for r in results if r.status == Status.SKIPPED]
    also = f"; {len(skipped)} skipped: {', '.join(skipped)}" if skipped else ""
    if failed:
        return f"{len(failed)} of {len(results)} units failed: {', '.join(failed)}{also}"
    if skipped:
        return f"degraded: {len(skipped)} of {len(results)} units skipped: {', '.join(skipped)}"
    return None


def counts(results: list[UnitResult]) -> dict[Status, int]:
    """How many results have each status."""
    return {status: sum(r.status == status for r in results) for status in Status}
