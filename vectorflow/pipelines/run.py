"""How a pipeline's steps run: threads of this process, or Prefect tasks a flow passes in.

A pipeline (`vectorflow.pipelines.candles.ingest_job`, ...) is written once against the
`Executor` protocol: `map(step, calls)` runs a library function over argument tuples
concurrently and returns each call's result, or the exception it raised, in order. The
command line passes a `ThreadExecutor`; a flow passes `tasks.executor.TaskExecutor`, which runs
each step as its Prefect task (retries, task runs in the UI). Both run the same functions, so
they land the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from vectorflow.exchanges.client import connect
from vectorflow.settings import Settings
from vectorflow.units import Unit, UnitResult, result_of


class Executor(Protocol):
    """Runs library steps concurrently."""

    def map(self, step: Callable, calls: Sequence[tuple]) -> list[object]:
        """`step(*args)` for each args tuple; each call's result or exception, in order."""
        ...


class ThreadExecutor:
    """Steps on up to `workers` threads of this process."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def map(self, step: Callable, calls: Sequence[tuple]) -> list[object]:
        """`step(*args)` for each args tuple; each call's result or exception, in order."""
        if len(calls) <= 1 or self.workers == 1:
            return [_outcome(step, args) for args in calls]
        with ThreadPoolExecutor(min(self.workers, len(calls))) as pool:
            return list(pool.map(lambda args: _outcome(step, args), calls))


def _outcome(step: Callable, args: tuple) -> object:
    try:
        return step(*args)
    except Exception as exc:  # noqa: BLE001 - returned to the caller, which reports it per unit
        return exc


def run_units(
    executor: Executor, step: Callable, units: Sequence[Unit], *args: object
) -> list[UnitResult]:
    """`step(unit, *args)` for every unit, concurrently; one result per unit, in order."""
    outcomes = executor.map(step, [(unit, *args) for unit in units])
    return [result_of(unit, outcome) for unit, outcome in zip(units, outcomes, strict=True)]


def per_exchange(
    executor: Executor, step: Callable, units: Iterable[Unit], *args: object
) -> dict[str, BaseException]:
    """`step(exchange, *args)` once per exchange of `units`; the exchanges where it raised."""
    exchanges = list(dict.fromkeys(u.exchange for u in units))
    outcomes = executor.map(step, [(exchange, *args) for exchange in exchanges])
    return {
        exchange: outcome
        for exchange, outcome in zip(exchanges, outcomes, strict=True)
        if isinstance(outcome, BaseException)
    }


def load_markets(exchange: str, settings: Settings) -> int:
    """Load (or reuse from the disk cache) the markets of `exchange`; how many it lists."""
    return len(connect(exchange, settings).markets)


def run_reachable(
    executor: Executor,
    units: Sequence[Unit],
    settings: Settings,
    work: Callable[[list[Unit]], list[UnitResult]],
) -> list[UnitResult]:
    """Load each exchange's markets once, then `work(units)` on the units of the exchanges that
    loaded; a unit of an exchange that did not fails with that exchange's error."""
    broken = per_exchange(executor, load_markets, units, settings)
    done = {r.unit: r for r in work([u for u in units if u.exchange not in broken])}
    return [done.get(u) or UnitResult.of_error(u, broken[u.exchange]) for u in units]
