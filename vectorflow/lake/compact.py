"""Compaction, retention and pruning of range datasets, safe while ingest runs.

Per partition, under its write lock (ingest waits for it; readers never do):

- each period's final rows (before the current month for yearly files, before today for
  daily ones) are merged into one deduplicated, sorted file (temp + rename), and so are its
  newer rows; a merge dominates its inputs (its range holds theirs), so once it has settled
  the views read it instead, and the inputs are deleted after the grace period by a later write;
- a single settled file of final rows is renamed `*.compact.parquet`: an atomic rename, so
  a query lists either name, never both (compacted files are read without deduplication);
- when a month closes, this year's compacted file is renamed back to an ordinary name (as
  atomic) and merged with that month: the year stays one file;
- an output never spans a hole nobody fetched (its name would claim that range): files are
  grouped only while each next one starts within one step of the previous, or across a range
  the exchange confirmed empty;
- rows older than the dataset's retention, `prune --before` and deleting a series remove files
  at once.

A writer that lands rows meanwhile waits for the lock, then trims what the output already
holds, so nothing is lost and nothing is written twice. A query reading a file at the moment
it is deleted or renamed fails with "Cannot open file" and gives the right answer when run
again (`vectorflow.lake.catalog.execute_retrying`); it does not see a row twice or miss one
(except around a `prune --before` that cuts through a file: for an instant both the old file
and its trimmed copy are listed).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from vectorflow.lake import store
from vectorflow.lake.coverage import covered as covered_intervals
from vectorflow.lake.files import (
    COMPACT_SUFFIX,
    FileRange,
    data_files,
    partition_dir,
    write_atomic,
)
from vectorflow.lake.scan import SETTLE_MS
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
    compacted: int = 0  # files renamed compacted
    pending: int = 0  # merges of finished periods to rename once settled
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
            rows = store.read_rows([f.path], dataset)
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


def _promote(file: FileRange, files: list[FileRange]) -> Path | None:
    """Rename a settled file that alone holds its rows to its compacted name (None: it doesn't).

    A rename is atomic: whichever name a query listed, it reads those rows once (or fails to
    open the old name and is run again). Partly overlapping files keep it ordinary.
    """
    for other in files:
        if other is file or store.dominator(other, files) is not None:
            continue
        if other.first_ms <= file.last_ms and other.last_ms >= file.first_ms:
            log.warning("%s overlaps %s: left uncompacted", file.path.name, other.path.name)
            return None
    target = file.path.with_name(file.path.name[: -len(".parquet")] + COMPACT_SUFFIX)
    os.rename(file.path, target)
    return target


def _demote(file: FileRange) -> FileRange:
    """Rename a compacted file back to an ordinary name, to be merged into a larger one.

    Atomic like `_promote`: its rows are read once under either name (or the query that
    listed the old name fails to open it and is run again); the merge that follows dominates
    it, and the views then read the merge instead.
    """
    target = file.path.with_name(file.path.name[: -len(COMPACT_SUFFIX)] + ".parquet")
    os.rename(file.path, target)
    return FileRange(target, file.first_ms, file.last_ms)


def _compact_final(
    dataset: Dataset, folder: Path, segment: list[FileRange], files: list[FileRange],
    report: PartitionReport,
) -> None:  # fmt: skip
    """One file for a contiguous run of final rows: merged (compacted next call) or renamed."""
    if len(segment) == 1 and segment[0].compact:
        return  # done already
    if len(segment) == 1 and not store.settled(segment[0]):
        report.pending += 1  # merged a moment ago: renamed on the next call
    elif len(segment) == 1:
        if (target := _promote(segment[0], files)) is not None:
            report.compacted += 1
            report.outputs.append(target.name)
    else:
        inputs = [_demote(f) if f.compact else f for f in segment]
        _merge(dataset, folder, inputs, report)
        report.pending += 1


def _merge(dataset: Dataset, folder: Path, group: list[FileRange], report: PartitionReport):
    out = store.merge_group(dataset, folder, group)
    report.files_in += len(group)
    report.files_out += 1
    report.rows_out += out.rows
    report.outputs.append(out.path.name)


def compact_partition(
    dataset: Dataset, folder: Path, settings: Settings, *, now: int | None = None
) -> PartitionReport:
    """Compact one partition folder (see the module docstring); what it did.

    Rows before the current `settle_unit` (this month, for a dataset of yearly files) are
    final: each period's final rows become one compacted file, the current year's growing by a
    month at a time (it is merged with the month that closed, then renamed compacted again).
    Newer rows are merged into one ordinary file. A merge made here is renamed compacted by the
    next call (`compact_lake` waits for it).
    """
    now = now_ms() if now is None else now
    lake = settings.lake
    report = PartitionReport(dataset.name, str(folder.relative_to(settings.lake_dir)))
    values = store.partition_values(dataset, folder)
    gap = store.adjacency_ms(dataset, values)
    coverage = _coverage_folder(settings.lake_dir, dataset, values)
    bridges = covered_intervals(coverage, None) if coverage is not None else []
    final_before = store.period_start(now, dataset.settle_unit)
    with store.partition_lock(folder):
        retention = lake.retention_ms(dataset.name)
        if retention is not None:
            cutoff = store.period_start(now - retention, dataset.settle_unit)
            _expire(dataset, folder, cutoff, report)
        files = data_files(folder)
        for group in _by_period(store.visible_files(files), dataset.period):
            final = [f for f in group if f.last_ms < final_before]
            recent = [f for f in group if f.last_ms >= final_before and not f.compact]
            for segment in store.contiguous_groups(final, gap, bridges):
                _compact_final(dataset, folder, segment, files, report)
            for segment in store.contiguous_groups(recent, gap, bridges):
                if len(segment) > 1:
                    _merge(dataset, folder, segment, report)
        report.deleted += len(store.collect_garbage(folder, lake.delete_grace_seconds))
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
    """Compact every partition of the range datasets (or of `datasets`).

    Merged files of finished periods become compacted once they have settled, and the files
    they replace may go after the grace period: this waits that long once, then finishes.
    """
    chosen = [ds for ds in range_datasets() if not datasets or ds.name in datasets]
    reports = []
    for dataset in chosen:
        for folder in partition_folders(settings.lake_dir, dataset):
            reports.append(compact_partition(dataset, folder, settings, now=now))
    pending = [r for r in reports if r.pending or r.files_out]
    if pending:  # wait until merges settled and their inputs may go, then finish the job
        time.sleep(max(SETTLE_MS / 1000, store.effective_grace(settings.lake.delete_grace_seconds)))
        for r in pending:
            again = compact_partition(
                DATASETS[r.dataset], settings.lake_dir / r.partition, settings, now=now
            )
            r.compacted += again.compacted
            r.outputs += again.outputs
            r.deleted += again.deleted
            r.pending = 0
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
