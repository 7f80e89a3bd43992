"""Compaction, retention and pruning of range datasets, safe while ingest runs.

Per partition, under its write lock (ingest waits for it; readers never do), one new state
is built and published at once (`vectorflow.lake.storage.Storage.open_version`):

- each period's final rows (before the current month for yearly files, before today for
  daily ones) become one deduplicated, sorted `*.compact.parquet` file: merged from their
  files, or, if one file holds them already, that file kept under its compacted name (a hard
  link); when a month closes, this year's compacted file and that month are merged into one;
- the newer rows of each period are merged into one ordinary file;
- an output never spans a hole nobody fetched (its name would claim that range): files are
  grouped only while each next one starts within one step of the previous, or across a range
  the exchange confirmed empty;
- rows older than the dataset's retention, `prune --before` and deleting a series leave files
  out of the snapshot (a file cut through is rewritten without the rows).

The snapshot holds the outputs *instead of* their inputs, so a query (which reads one
snapshot per partition) never sees a row twice or misses one: a query that listed a file of
the previous snapshot which the new one dropped fails with "No such file" and gives the right
answer when run again (`vectorflow.lake.catalog.execute_retrying`). A writer that lands rows
meanwhile waits for the lock, then trims what the outputs already hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import PurePath

import pyarrow as pa
import pyarrow.compute as pc

from vectorflow.lake import store
from vectorflow.lake.coverage import covered as covered_intervals
from vectorflow.lake.files import (
    FileRange,
    compact_name,
    partition_dir,
    partition_pattern,
    partition_values,
)
from vectorflow.lake.periods import period_start
from vectorflow.lake.reads import name_range, read_rows
from vectorflow.lake.schema import COVERAGE_RANGES, DATASETS, Dataset
from vectorflow.lake.storage import Storage, Version
from vectorflow.lake.verify import set_aside_unusable
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
    compacted: int = 0  # files kept under their compacted name
    pending: int = 0  # always 0 (kept for the report's columns)
    deleted: int = 0  # files left out of the snapshot (expired), or superseded snapshots removed
    expired_rows: int = 0
    outputs: list[str] = field(default_factory=list)

    def as_row(self) -> dict:
        """A flat dict for tables and artifacts."""
        return {k: v for k, v in self.__dict__.items() if k != "outputs"}


def range_datasets() -> list[Dataset]:
    """The datasets compaction handles (files named by the complete range they hold)."""
    return [ds for ds in DATASETS.values() if ds.complete_ranges]


def partition_folders(
    storage: Storage, dataset: Dataset, **match: str | None
) -> list[PurePath]:
    """Partition folders of `dataset`, optionally only those with the given partition values."""
    return storage.folders(storage.root / dataset.name, partition_pattern(dataset, match))


def _coverage_folder(
    lake: PurePath, dataset: Dataset, values: dict[str, str]
) -> PurePath | None:
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


def _by_period(files: list[FileRange], period: str) -> list[list[FileRange]]:
    """Files grouped by the period of their first time; overlapping files join one group."""
    groups: dict[int, list[FileRange]] = {}
    for f in files:
        groups.setdefault(period_start(f.first_ms, period), []).append(f)
    return [groups[k] for k in sorted(groups)]


def _expire(
    storage: Storage, dataset: Dataset, version: Version, cutoff: int, report: PartitionReport
) -> None:
    """Remove rows before `cutoff`: whole files go, a straddling file is rewritten without them."""
    for f in version.files:
        if f.last_ms < cutoff:
            version.remove(f)
            report.deleted += 1
        elif f.first_ms < cutoff and set_aside_unusable(storage, dataset, version, [f]):
            rows = read_rows(storage, [f.path], dataset)
            keep = pc.greater_equal(
                rows.column(dataset.order_by), pa.scalar(cutoff, pa.timestamp("ms"))
            )
            kept = rows.filter(keep)
            report.expired_rows += rows.num_rows - kept.num_rows
            if kept.num_rows:
                first, last = name_range(kept, dataset)
                version.write(kept, first, last, compact=f.compact)
            version.remove(f)
            report.deleted += 1


def _compact_final(
    storage: Storage, dataset: Dataset, version: Version, segment: list[FileRange],
    report: PartitionReport,
) -> None:  # fmt: skip
    """One compacted file for a contiguous run of final rows: merged, or kept and renamed."""
    if len(segment) == 1 and segment[0].compact:
        return  # done already
    if len(segment) == 1:
        version.rename(segment[0], compact_name(segment[0]))
        report.compacted += 1
        report.outputs.append(compact_name(segment[0]))
    elif _merge(storage, dataset, version, segment, report, compact=True):
        report.compacted += 1


def _merge(
    storage: Storage,
    dataset: Dataset,
    version: Version,
    group: list[FileRange],
    report: PartitionReport,
    *,
    compact: bool = False,
) -> bool:
    """Merge a group into one file (False: none of it could be read)."""
    out = store.merge_group(storage, dataset, version, group, compact=compact)
    if out is None:
        return False
    report.files_in += len(group)
    report.files_out += 1
    report.rows_out += out.rows
    report.outputs.append(out.path.name)
    return True


def compact_partition(
    dataset: Dataset, folder: PurePath, settings: Settings, *, now: int | None = None
) -> PartitionReport:
    """Compact one partition folder (see the module docstring); what it did.

    Rows before the current `settle_unit` (this month, for a dataset of yearly files) are
    final: each period's final rows become one compacted file, the current year's growing by a
    month at a time. Newer rows are merged into one ordinary file. One snapshot is published.
    """
    now = now_ms() if now is None else now
    lake, storage = settings.lake, settings.storage
    report = PartitionReport(dataset.name, str(folder.relative_to(storage.root)))
    values = partition_values(dataset, folder)
    gap = dataset.gap_ms(values)
    coverage = _coverage_folder(storage.root, dataset, values)
    bridges = covered_intervals(storage, coverage, None) if coverage is not None else []
    final_before = period_start(now, dataset.settle_unit)
    with storage.lock(folder):
        version = storage.open_version(folder, dataset)
        retention = lake.retention_ms(dataset.name)
        if retention is not None:
            cutoff = period_start(now - retention, dataset.settle_unit)
            _expire(storage, dataset, version, cutoff, report)
        for group in _by_period(version.files, dataset.period):
            final = [f for f in group if f.last_ms < final_before]
            recent = [f for f in group if f.last_ms >= final_before and not f.compact]
            for segment in store.contiguous_groups(final, gap, bridges):
                _compact_final(storage, dataset, version, segment, report)
            for segment in store.contiguous_groups(recent, gap, bridges):
                if len(segment) > 1:
                    _merge(storage, dataset, version, segment, report)
        if not version.publish(lake.delete_grace_seconds):
            storage.tidy(folder, lake.delete_grace_seconds)
    if report.files_out or report.compacted:
        log.info(
            "%s: %d files -> %d (%d rows), %d compacted",
            report.partition,
            report.files_in,
            report.files_out,
            report.rows_out,
            report.compacted,
        )
    return report


def compact_lake(
    settings: Settings, datasets: list[str] | None = None, *, now: int | None = None
) -> list[PartitionReport]:
    """Compact every partition of the range datasets (or of `datasets`)."""
    chosen = [ds for ds in range_datasets() if not datasets or ds.name in datasets]
    reports = []
    for dataset in chosen:
        for folder in partition_folders(settings.storage, dataset):
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
    recorded empty ranges: one snapshot without them is published per partition."""
    reports, storage = [], settings.storage
    for folder in partition_folders(storage, dataset, **match):
        report = PartitionReport(dataset.name, str(folder.relative_to(storage.root)))
        values = partition_values(dataset, folder)
        coverage = _coverage_folder(storage.root, dataset, values)
        targets = [(folder, dataset)]
        if coverage is not None and storage.exists(coverage):
            targets.append((coverage, COVERAGE_RANGES))
        for target, kind in targets:
            with storage.lock(target):
                version = storage.open_version(target, kind)
                _expire(storage, kind, version, before if before is not None else 2**62, report)
                version.publish(settings.lake.delete_grace_seconds)
        log.info(
            "%s: pruned %s: %d files deleted",
            report.partition,
            "everything" if before is None else f"before {ms_to_iso(before)}",
            report.deleted,
        )
        reports.append(report)
    return reports
