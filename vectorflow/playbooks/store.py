"""Playbooks and their outcomes in the lake: atomic writes, the answer cache, reads for grading.

Every query here takes values as bound parameters; nothing a model wrote ever becomes part of
SQL text or of a path (paths come from the series names, through `safe_component`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import fields
from pathlib import PurePath

import pyarrow as pa
import pyarrow.dataset as ds

from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import PLAYBOOK_OUTCOMES, PLAYBOOKS, Dataset
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.inputs import plain_value
from vectorflow.playbooks.reads import ms_timestamp, query_lake, series_values, symbol_id
from vectorflow.playbooks.record import CACHEABLE, PlaybookRecord
from vectorflow.timeframes import now_ms
from vectorflow.units import Unit

log = logging.getLogger(__name__)
_RECORD_FIELDS = {f.name for f in fields(PlaybookRecord)}


def _table(dataset: Dataset, rows: list[dict], ingested_at_ms: int) -> pa.Table:
    columns = {}
    for f in dataset.schema:
        values = [row.get(f.name) for row in rows]
        if f.name == "ingested_at":
            values = [ingested_at_ms] * len(rows)
        if pa.types.is_timestamp(f.type):
            columns[f.name] = pa.array(values, pa.int64()).cast(f.type)
        else:
            columns[f.name] = pa.array(values, f.type)
    return pa.Table.from_pydict(columns, schema=dataset.schema)


def write_rows(lake: Storage, dataset: Dataset, rows: Iterable[dict]) -> list[PurePath]:
    """Write rows of `dataset` as one atomic file per series partition, named by as_of range."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["exchange"], row["market"], row["symbol"], row["timeframe"])].append(row)
    written, stamp = [], now_ms()
    for (exchange, market, symbol, timeframe), group in groups.items():
        folder = partition_dir(
            lake.root,
            dataset,
            {
                "exchange": exchange,
                "market": market,
                "symbol_id": symbol_id(symbol),
                "timeframe": timeframe,
            },
        )
        times = [row["as_of"] for row in group]
        written.append(lake.write(_table(dataset, group, stamp), folder, min(times), max(times)))
    return written


def write_playbooks(lake: Storage, records: Iterable[PlaybookRecord]) -> list[PurePath]:
    """Land playbook records in the `playbooks` dataset."""
    return write_rows(lake, PLAYBOOKS, (r.as_row() for r in records))


def _record(row: dict) -> PlaybookRecord:
    values = {k: plain_value(v) for k, v in row.items() if k in _RECORD_FIELDS}
    targets = row.get("targets")
    values["targets"] = tuple(
        (float(t["price"]), float(t["share"])) for t in (targets if targets is not None else [])
    )
    for name in ("levels_used", "raw_answers"):
        items = row.get(name)
        values[name] = tuple(str(v) for v in (items if items is not None else []))
    prices = row.get("level_prices")
    values["level_prices"] = tuple(float(p) for p in (prices if prices is not None else []))
    for name in ("as_of", "created_at"):
        values[name] = int(row[f"{name}_ms"])
    return PlaybookRecord(**values)


_SELECT = """
    SELECT * EXCLUDE (as_of, created_at, ingested_at),
           epoch_ms(as_of) AS as_of_ms, epoch_ms(created_at) AS created_at_ms
    FROM read_parquet(?, union_by_name = true, hive_partitioning = false)"""


def _arrow_rows(table: pa.Table) -> list[dict]:
    """Rows of an Arrow table with times as epoch ms (`as_of_ms`, `created_at_ms`)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.int64()))
    rows = table.to_pylist()
    for row in rows:
        row["as_of_ms"], row["created_at_ms"] = row["as_of"], row["created_at"]
    return rows


def find_cached(
    lake: Storage, unit: Unit, inputs_hash: str, as_of_ms: int
) -> PlaybookRecord | None:
    """The newest stored Grok answer for these exact inputs, if any is final.

    The inputs include as_of, so only the files whose name range holds as_of are opened.
    """
    folder = partition_dir(lake.root, PLAYBOOKS, series_values(unit))
    files = [f.path for f in lake.files(folder, PLAYBOOKS) if f.first_ms <= as_of_ms <= f.last_ms]
    if not files:
        return None
    field = ds.field
    wanted = (
        (field("inputs_hash") == inputs_hash)
        & (field("source") == "grok")
        & field("status").isin(list(CACHEABLE))
    )
    table = lake.parquet_dataset(files, PLAYBOOKS.schema).to_table(filter=wanted)
    if table.num_rows == 0:
        return None
    newest = max(_arrow_rows(table), key=lambda r: (r["created_at"], r["ingested_at"]))
    return _record(newest)


def ungraded_playbooks(lake: Storage) -> list[PlaybookRecord]:
    """Valid (`ok`, `repaired`), non-cached playbooks with no stored outcome yet, oldest first."""
    playbooks = str(lake.root / PLAYBOOKS.name / "**" / "*.parquet")
    outcomes = str(lake.root / PLAYBOOK_OUTCOMES.name / "**" / "*.parquet")
    graded = "SELECT playbook_id FROM read_parquet(?, union_by_name = true)"
    sql = f"""{_SELECT}
        WHERE status IN ('ok', 'repaired') AND bias IN ('long', 'short', 'no_trade')
              AND NOT cached AND (bias <> 'no_trade' OR last_price IS NOT NULL)
        QUALIFY row_number() OVER (PARTITION BY playbook_id ORDER BY ingested_at DESC) = 1"""
    frame = query_lake(lake, sql, [playbooks])
    if frame.empty:
        return []
    done = query_lake(lake, graded, [outcomes])
    if not done.empty:
        frame = frame[~frame["playbook_id"].isin(set(done["playbook_id"]))]
    frame = frame.sort_values(["as_of_ms", "playbook_id"])
    return [_record(row) for row in frame.to_dict("records")]


def read_playbooks(lake: Storage, ids: list[str]) -> list[PlaybookRecord]:
    """Stored playbooks by id (newest version of each), in the order of `ids`."""
    if not ids:
        return []
    glob = str(lake.root / PLAYBOOKS.name / "**" / "*.parquet")
    sql = f"""{_SELECT} WHERE list_contains(?, playbook_id)
        QUALIFY row_number() OVER (PARTITION BY playbook_id ORDER BY ingested_at DESC) = 1"""
    frame = query_lake(lake, sql, [glob, list(ids)])
    found = {row["playbook_id"]: _record(row) for row in frame.to_dict("records")}
    return [found[i] for i in ids if i in found]


def graded_ids(lake: Storage, ids: list[str]) -> set[str]:
    """Which of these playbooks already have a stored outcome."""
    if not ids:
        return set()
    glob = str(lake.root / PLAYBOOK_OUTCOMES.name / "**" / "*.parquet")
    sql = """SELECT DISTINCT playbook_id FROM read_parquet(?, union_by_name = true)
             WHERE list_contains(?, playbook_id)"""
    frame = query_lake(lake, sql, [glob, list(ids)])
    return set(frame["playbook_id"]) if not frame.empty else set()


def series_playbooks(
    lake: Storage, unit: Unit, start_ms: int, end_ms: int, *, run_id: str | None = None
) -> list[PlaybookRecord]:
    """Stored playbooks of `unit` with as_of in [start, end] (of one run when given), oldest first.

    The newest row of each playbook id wins.
    """
    folder = partition_dir(lake.root, PLAYBOOKS, series_values(unit))
    stored = lake.files(folder, PLAYBOOKS)
    files = [f.path for f in stored if f.last_ms >= start_ms and f.first_ms <= end_ms]
    if not files:
        return []
    t = ds.field("as_of")
    wanted = (t >= ms_timestamp(start_ms)) & (t <= ms_timestamp(end_ms))
    wanted = wanted & (ds.field("symbol") == unit.symbol)
    if run_id is not None:
        wanted = wanted & (ds.field("run_id") == run_id)
    table = lake.parquet_dataset(files, PLAYBOOKS.schema).to_table(filter=wanted)
    newest: dict[str, dict] = {}
    for row in sorted(_arrow_rows(table), key=lambda r: r["ingested_at"]):
        newest[row["playbook_id"]] = row
    return sorted((_record(r) for r in newest.values()), key=lambda r: (r.as_of, r.source))


def cached_hashes(lake: Storage, unit: Unit, start_ms: int, end_ms: int) -> set[str]:
    """Input hashes of final Grok answers stored for `unit` with as_of in [start, end]."""
    return {
        r.inputs_hash
        for r in series_playbooks(lake, unit, start_ms, end_ms)
        if r.source == "grok" and r.status in CACHEABLE and r.inputs_hash
    }
