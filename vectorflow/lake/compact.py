"""Compaction, retention and pruning of range datasets, safe while ingest runs.

Per partition, under its write lock (ingest waits for it; readers never do):

- each *closed* period's files become one deduplicated, sorted `*.compact.parquet` file; the
  open period's files become one ordinary file (later runs keep merging into it);
- an output is written (temp + rename) before anything is removed, and it dominates its inputs
  (its range holds theirs), so the views switch to it at once; the inputs stay on disk for
  `delete_grace_seconds` for queries that listed them already, and the next write deletes them;
- an output never spans a hole nobody fetched (its name would claim that range): files are
  grouped only while each next one starts within one step of the previous, or across a range
  the exchange confirmed empty;
- rows older than the dataset's retention, `prune --before` and deleting a series remove files
  at once (a query that listed one of them a moment before fails and can be run again).

A writer that lands rows meanwhile waits for the lock, then trims what the output already
holds, so nothing is lost and nothing is written twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from vectorflow.lake import store
from vectorflow.lake.coverage import covered as covered_intervals
from vectorflow.lake.files import FileRange, data_files, partition_dir, write_atomic
from vectorflow.lake.schema import COVERAGE_RANGES, DATASETS, Dataset
from vectorflow.settings import Settings
from vectorflow.timeframes import ms_to_iso, now_ms

log = logging.getLogger(__name__)


@dataclass
class PartitionReport:
    """What compaction or pruning did to one partition."""

    dataset: str
    partition: str
    files_in: int = 0
    files_out: int = 0
    rows_out: int = 0
    deleted: int = 0
    expired_rows: int = 0
    outputs: list[str] = field(default_factory=list)

    def as_row(self) -> dict:
        """A flat dict for tables and artifacts."""
        return {k: v for k, v in self.__dict__.items() if k != "outputs"}


def range_datasets() -> list[Dataset]:
    """The datasets compaction handles (files named by the complete range they hold)."""
    return [ds for ds in DATASETS.values() if ds.complete_ranges]


def partition_folders(lake: Path, dataset: Dataset, **match: str | None) -> Iterator[Path]:
    """Partition folders of `dataset`, optionally only those with the given partition values."""
    root = lake / dataset.name
    if not root.is_dir():
        return
    pattern = "/".join(
        f"{key}={match[key]}" if match.get(key) else f"{key}=*" for key in dataset.partitions
    )
    yield from sorted(p for p in root.glob(pattern) if p.is_dir())


def read_rows(paths: list[Path], dataset: Dataset) -> pa.Table:
    """The rows of some files, one per key (newest `ingested_at`), sorted by time then key."""
    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    key = ", ".join(f'"{k}"' for k in dataset.key)
    con = duckdb.connect()
    try:
        table = con.sql(
            f"SELECT * FROM read_parquet([{files}], union_by_name = true, "
            "hive_partitioning = false) "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ingested_at DESC) = 1 "
            f'ORDER BY "{dataset.order_by}", {key}'
        ).to_arrow_table()
    finally:
        con.close()
    return store.conform(table, dataset.schema)


def _coverage_folder(lake: Path, dataset: Dataset, values: dict[str, str]) -> Path | None:
    """Where the empty ranges of the series in a partition are recorded (None: not recorded)."""
    series = values.get("timeframe") or values.get("period")
    if dataset.name == "funding_rates":
        series = "all"
    if series is None or dataset.name == COVERAGE_RANGES.name:
        return None
    return partition_dir(
        lake,
        COVERAGE_RANGES,
        {
            "dataset": dataset.name,
            "exchange": values["exchange"],
            "market": values.get("market", "linear"),
            "symbol_id": values["symbol_id"],
            "series": series,
        },
    )


def _segments(
    files: list[FileRange], gap: int | None, bridges: list[tuple[int, int]]
) -> list[list[FileRange]]:
    """Files grouped while each starts within `gap` of the group's end or across a bridge."""
    groups: list[list[FileRange]] = []
    end = None
    slack = gap or 1
    for f in sorted(files, key=lambda f: (f.first_ms, f.last_ms)):
        joined = end is not None and (
            gap is None
            or f.first_ms - end <= gap
            or any(a <= end + slack and f.first_ms <= b + slack for a, b in bridges)
        )
        if joined:
            groups[-1].append(f)
            end = max(end, f.last_ms)
        else:
            groups.append([f])
            end = f.last_ms
    return groups


def _by_period(files: list[FileRange], period: str) -> list[list[FileRange]]:
    """Files grouped by the period of their first time; overlapping files join one group."""
    groups: dict[int, list[FileRange]] = {}
    for f in files:
        groups.setdefault(store.period_start(f.first_ms, period), []).append(f)
    return [groups[k] for k in sorted(groups)]


def _expire(dataset: Dataset, folder: Path, cutoff: int, report: PartitionReport) -> None:
    """Remove rows before `cutoff`: whole files go, a straddling file is rewritten without them."""
    files = data_files(folder)
    for f in files:
        if f.last_ms < cutoff or (f.first_ms < cutoff and store.dominator(f, files)):
            os.unlink(f.path)  # superseded ones too: their dominator may be rewritten below
            report.deleted += 1
        elif f.first_ms < cutoff:
            rows = read_rows([f.path], dataset)
            keep = pc.greater_equal(
                rows.column(dataset.order_by), pa.scalar(cutoff, pa.timestamp("ms"))
            )
            kept = rows.filter(keep)
            report.expired_rows += rows.num_rows - kept.num_rows
            if kept.num_rows:
                first, last = store.name_range(kept, dataset)
                write_atomic(kept, folder, first, last, compact=f.compact)
            os.unlink(f.path)
            report.deleted += 1


def _rewrite(
    dataset: Dataset,
    folder: Path,
    segment: list[FileRange],
    files: list[FileRange],
    closed: bool,
    report: PartitionReport,
) -> None:
    """One output for `segment`; compacted files it overlaps (late rows) are merged in."""
    lo = min(f.first_ms for f in segment)
    hi = max(f.last_ms for f in segment)
    clash = [f for f in files if f.compact and f.first_ms <= hi and f.last_ms >= lo]
    rows = read_rows([f.path for f in segment + clash], dataset)
    first, last = store.name_range(rows, dataset)
    path = write_atomic(rows, folder, first, last, compact=closed or bool(clash))
    for f in clash:  # compacted files never overlap: the replaced one goes at once
        os.unlink(f.path)
        report.deleted += 1
    report.files_in += len(segment) + len(clash)
    report.files_out += 1
    report.rows_out += rows.num_rows
    report.outputs.append(path.name)


def compact_partition(
    dataset: Dataset, folder: Path, settings: Settings, *, now: int | None = None
) -> PartitionReport:
    """Compact one partition folder (see the module docstring); what it did."""
    now = now_ms() if now is None else now
    lake = settings.lake
    report = PartitionReport(dataset.name, str(folder.relative_to(settings.lake_dir)))
    values = store.partition_values(dataset, folder)
    gap = store.adjacency_ms(dataset, values)
    coverage = _coverage_folder(settings.lake_dir, dataset, values)
    bridges = covered_intervals(coverage, None) if coverage is not None else []
    with store.partition_lock(folder):
        retention = lake.retention_ms(dataset.name)
        if retention is not None:
            _expire(dataset, folder, store.period_start(now - retention, dataset.period), report)
        files = data_files(folder)
        ordinary = [f for f in store.visible_files(files) if not f.compact]
        for group in _by_period(ordinary, dataset.period):
            closed = store.period_end(group[0].first_ms, dataset.period) <= now
            for segment in _segments(group, gap, bridges):
                if not closed and len(segment) == 1:
                    continue  # the open period's only file: nothing to gain
                _rewrite(dataset, folder, segment, files, closed, report)
        report.deleted += len(store.collect_garbage(folder, lake.delete_grace_seconds))
    if report.files_out:
        log.info(
            "%s: %d files -> %d (%d rows)",
            report.partition,
            report.files_in,
            report.files_out,
            report.rows_out,
        )
    return report


def compact_lake(
    settings: Settings, datasets: list[str] | None = None, *, now: int | None = None
) -> list[PartitionReport]:
    """Compact every partition of the range datasets (or of `datasets`)."""
    chosen = [ds for ds in range_datasets() if not datasets or ds.name in datasets]
    reports = []
    for dataset in chosen:
        for folder in partition_folders(settings.lake_dir, dataset):
            reports.append(compact_partition(dataset, folder, settings, now=now))
    return reports


def prune(
    settings: Settings,
    dataset: Dataset,
    *,
    before: int | None,
    match: dict[str, str | None],
) -> list[PartitionReport]:
    """Delete rows before `before` (None: every row) of the matching partitions, and their
    recorded empty ranges; files go at once."""
    reports = []
    for folder in partition_folders(settings.lake_dir, dataset, **match):
        report = PartitionReport(dataset.name, str(folder.relative_to(settings.lake_dir)))
        with store.partition_lock(folder):
            _expire(dataset, folder, before if before is not None else 2**62, report)
        values = store.partition_values(dataset, folder)
        coverage = _coverage_folder(settings.lake_dir, dataset, values)
        if coverage is not None and coverage.is_dir():
            with store.partition_lock(coverage):
                _expire(COVERAGE_RANGES, coverage, before if before is not None else 2**62, report)
        log.info(
            "%s: pruned %s: %d files deleted",
            report.partition,
            "everything" if before is None else f"before {ms_to_iso(before)}",
            report.deleted,
        )
        reports.append(report)
    return reports
