"""Lake maintenance as units: compaction (with each dataset's retention) per partition."""

from __future__ import annotations

from pathlib import Path

from vectorflow.errors import InvalidInput
from vectorflow.lake.compact import compact_partition, partition_folders, range_datasets
from vectorflow.lake.schema import DATASETS, Dataset
from vectorflow.pipelines.run import Executor
from vectorflow.settings import Settings
from vectorflow.units import Unit, UnitResult, result_of


def check_datasets(names: list[str] | None) -> list[Dataset]:
    """The range datasets named (all when none are); InvalidInput naming an unknown one."""
    known = {ds.name: ds for ds in range_datasets()}
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise InvalidInput(
            f"unknown dataset {', '.join(unknown)}; expected one of {', '.join(known)}"
        )
    return [ds for name, ds in known.items() if not names or name in names]


def partition_unit(dataset: str, partition: str) -> Unit:
    """The unit of a partition folder (relative to the lake): its exchange, market, symbol id
    and timeframe or period, as its path names them."""
    values = dict(part.split("=", 1) for part in Path(partition).parts if "=" in part)
    step = values.get("timeframe") or values.get("period") or values.get("series")
    return Unit(values.get("exchange", ""), values.get("market", "linear"),
                values.get("symbol_id", ""), step, dataset)  # fmt: skip


def compact_one(dataset: str, partition: str, settings: Settings) -> UnitResult:
    """Compact one partition folder (relative to the lake) and apply its dataset's retention."""
    report = compact_partition(DATASETS[dataset], settings.storage.root / partition, settings)
    counts = ("files_in", "files_out", "compacted", "deleted", "expired_rows")
    return UnitResult(
        partition_unit(dataset, partition),
        rows_written=report.rows_out,
        detail={"partition": partition, **{k: getattr(report, k) for k in counts}},
    )


def compact_job(
    settings: Settings, datasets: list[Dataset], executor: Executor
) -> list[UnitResult]:
    """Compact every partition of `datasets`; one result per partition."""
    calls = [
        (ds.name, str(folder.relative_to(settings.storage.root)), settings)
        for ds in datasets
        for folder in partition_folders(settings.storage, ds)
    ]
    outcomes = executor.map(compact_one, calls)
    return [result_of(partition_unit(name, partition), outcome)
            for (name, partition, _), outcome in zip(calls, outcomes, strict=True)]  # fmt: skip
