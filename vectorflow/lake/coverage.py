"""What a series has fetched, from file names alone: the data files plus confirmed-empty ranges.

A data file covers its named range (every key the exchange had there is in it). A range the
exchange confirmed empty (before a listing, an outage, after a delisting) is a row of
`coverage_ranges`, in a file named by the range it spans. Planning a run is then: the
requested window minus what is covered, read from two folder listings, whatever the history's
size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import pyarrow as pa

from vectorflow.errors import PermanentError
from vectorflow.lake import store
from vectorflow.lake.files import FileRange, partition_dir
from vectorflow.lake.schema import COVERAGE_RANGES, DATASETS, Dataset
from vectorflow.lake.storage import Storage
from vectorflow.lake.verify import verified_files
from vectorflow.settings import Settings
from vectorflow.timeframes import now_ms

log = logging.getLogger(__name__)

Interval = tuple[int, int]  # half-open [start, end) in UTC ms


@dataclass(frozen=True)
class SeriesKey:
    """One series of one dataset, as coverage records name it."""

    dataset: str
    exchange: str
    market: str
    symbol: str
    symbol_id: str
    series: str  # candles: timeframe; open interest: period; otherwise "all"

    def folder(self, lake: PurePath) -> PurePath:
        """The series' folder in `coverage_ranges` (under the lake root `lake`)."""
        return partition_dir(
            lake,
            COVERAGE_RANGES,
            {
                "dataset": self.dataset,
                "exchange": self.exchange,
                "market": self.market,
                "symbol_id": self.symbol_id,
                "series": self.series,
            },
        )


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, merged half-open intervals (touching ones join)."""
    out: list[list[int]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def dataset_of(storage: Storage, folder: PurePath) -> Dataset:
    """The dataset a partition folder belongs to (the first level under the lake root)."""
    return DATASETS[folder.relative_to(storage.root).parts[0]]


def _files(storage: Storage, folder: PurePath, verify: bool) -> list[FileRange]:
    dataset = dataset_of(storage, folder)
    if verify:  # planning a --since run: never trust a name over what the file holds
        # (a repair publishes without removing superseded snapshots: the next write does)
        return verified_files(storage, dataset, folder, grace_seconds=float("inf"))
    return storage.files(folder, dataset)


def covered(
    storage: Storage, data_folder: PurePath, coverage_folder: PurePath | None, *,
    verify: bool = False,
) -> list[Interval]:  # fmt: skip
    """What a series holds or knows to be empty: merged intervals from file names (with
    `verify`, of files checked against what they hold, `vectorflow.lake.verify`)."""
    spans = [(f.first_ms, f.last_ms + 1) for f in _files(storage, data_folder, verify)]
    if coverage_folder is not None:
        spans += [(f.first_ms, f.last_ms + 1) for f in _files(storage, coverage_folder, verify)]
    return merge(spans)


def missing(
    have: Sequence[Interval], since_ms: int | None, until_ms: int, label: str
) -> list[Interval]:
    """The parts of [since, until) not covered; without since, what follows the covered end."""
    if not have:
        if since_ms is None:
            raise PermanentError(f"{label}: nothing stored yet; give since (e.g. 2024-01-01)")
        return [(since_ms, until_ms)] if since_ms < until_ms else []
    start = have[-1][1] if since_ms is None else since_ms
    holes, cursor = [], start
    for a, b in have:
        if b <= cursor:
            continue
        if a >= until_ms:
            break
        if a > cursor:
            holes.append((cursor, min(a, until_ms)))
        cursor = max(cursor, b)
    if cursor < until_ms:
        holes.append((cursor, until_ms))
    return holes


def windows_to_fetch(
    storage: Storage,
    data_folder: PurePath,
    coverage_folder: PurePath,
    since_ms: int | None,
    until_ms: int,
    label: str,
    *,
    first_since_ms: int | None = None,
) -> list[Interval]:
    """What a run asks for: [since, until) minus what is covered, or what follows it.

    Without since (the scheduled, incremental case) only the covered end matters: two stamps
    are parsed per folder (`Storage.stored_range`), whatever the number of files. A series with
    nothing stored starts at `first_since_ms` (the settings' `first_run_days` back), when given.
    With since, every file is checked against what it holds first (a file that lies about its
    range is rewritten or set aside, and the range it lacks is fetched).
    """
    if since_ms is not None:
        have = covered(storage, data_folder, coverage_folder, verify=True)
        return missing(have, since_ms, until_ms, label)
    ranges = (
        storage.stored_range(data_folder, dataset_of(storage, data_folder)),
        storage.stored_range(coverage_folder, COVERAGE_RANGES),
    )
    ends = [r[1] + 1 for r in ranges if r]
    if not ends and first_since_ms is not None:
        return missing([], first_since_ms, until_ms, label)
    if not ends:
        raise PermanentError(f"{label}: nothing stored yet; give since (e.g. 2024-01-01)")
    return [(max(ends), until_ms)] if max(ends) < until_ms else []


def empty_spans(
    times: np.ndarray, start: int, confirmed_until: int, step: int, *, min_ms: int = 1
) -> list[Interval]:
    """Ranges of [start, confirmed_until) with no row, when each row covers [t, t + step)."""
    if confirmed_until <= start:
        return []
    t = np.sort(np.asarray(times, dtype=np.int64))
    t = t[(t >= start) & (t < confirmed_until)]
    if len(t) == 0:
        spans = [(start, confirmed_until)]
    else:
        ends = t + step
        spans = [(start, int(t[0]))]
        gaps = np.flatnonzero(t[1:] > ends[:-1])
        spans += [(int(ends[i]), int(t[i + 1])) for i in gaps]
        spans.append((int(ends[-1]), confirmed_until))
    return [(a, b) for a, b in spans if b - a >= min_ms]


def ranges_table(key: SeriesKey, spans: Sequence[Interval], ingested_at: int) -> pa.Table:
    """Coverage rows (status `exchange_empty`) for `spans`, sorted."""
    spans = sorted(spans)
    n = len(spans)
    return pa.table(
        {
            "dataset": [key.dataset] * n,
            "exchange": [key.exchange] * n,
            "market": [key.market] * n,
            "symbol": [key.symbol] * n,
            "series": [key.series] * n,
            "range_start": pa.array([a for a, _ in spans], pa.int64()).cast(pa.timestamp("ms")),
            "range_end": pa.array([b for _, b in spans], pa.int64()).cast(pa.timestamp("ms")),
            "status": ["exchange_empty"] * n,
            "ingested_at": pa.array([ingested_at] * n, pa.int64()).cast(pa.timestamp("ms")),
        },
        schema=COVERAGE_RANGES.schema,
    )


def record_empty(settings: Settings, key: SeriesKey, spans: Sequence[Interval]) -> int:
    """Record ranges the exchange confirmed empty (those not yet covered); how many were new."""
    storage = settings.storage
    folder = key.folder(storage.root)
    have = covered(storage, folder, None)
    fresh = [(a, b) for a, b in merge(spans) if not any(x <= a and b <= y for x, y in have)]
    if not fresh:
        return 0
    table = ranges_table(key, fresh, now_ms())
    store.append(storage, COVERAGE_RANGES, folder, table, **settings.lake.append_options())
    log.info("%s %s %s %s: %d empty range(s) recorded", *_label(key), len(fresh))
    return len(fresh)


def _label(key: SeriesKey) -> tuple[str, str, str, str]:
    return key.dataset, key.exchange, key.symbol, key.series
