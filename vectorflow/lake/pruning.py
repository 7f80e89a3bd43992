"""What a prune would delete, counted before anything goes (`vectorflow prune` shows it and asks).

Per matching partition (one series): the rows before the cut (every row for a whole series)
and the rows it holds, from the current snapshot's files: a file wholly before the cut counts
from its manifest entry (or footer), a file cut through by reading its time column.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from vectorflow.lake.compact import partition_folders
from vectorflow.lake.files import FileRange
from vectorflow.lake.schema import Dataset
from vectorflow.lake.storage import Storage
from vectorflow.settings import Settings


@dataclass(frozen=True)
class PruneTarget:
    """One series a prune would touch: the rows it would delete and the rows it holds."""

    dataset: str
    partition: str  # relative to the lake, e.g. exchange=bybit/market=spot/...
    rows: int
    total: int

    @property
    def whole(self) -> bool:
        """True when every row of the series would go."""
        return self.rows > 0 and self.rows == self.total

    def as_row(self) -> dict:
        """A flat dict for the printed table."""
        return {"dataset": self.dataset, "series": self.partition, "rows_deleted": self.rows,
                "rows_kept": self.total - self.rows}  # fmt: skip


def _rows_before(storage: Storage, file: FileRange, dataset: Dataset, before: int) -> int:
    times = storage.parquet_file(file.path).read(columns=[dataset.order_by]).column(0)
    cut = pa.scalar(before, pa.timestamp("ms"))
    return int(pc.sum(pc.less(times, cut)).as_py() or 0)


def plan_prune(
    settings: Settings, dataset: Dataset, *, before: int | None, match: dict[str, str | None]
) -> Iterator[PruneTarget]:
    """The series `prune(settings, dataset, before=..., match=...)` would touch, and how much of
    each would go (`before` None: all of it)."""
    storage = settings.storage
    for folder in partition_folders(storage, dataset, **match):
        recorded = storage.recorded_rows(folder)  # the manifest's counts, when there is one
        rows = total = 0
        for file in storage.files(folder, dataset):
            count = recorded.get(file.path.name)
            if count is None:
                count = storage.parquet_file(file.path).metadata.num_rows
            total += count
            if before is None or file.last_ms < before:
                rows += count
            elif file.first_ms < before:
                rows += _rows_before(storage, file, dataset, before)
        partition = str(folder.relative_to(storage.root).relative_to(dataset.name))
        yield PruneTarget(dataset.name, partition, rows, total)
