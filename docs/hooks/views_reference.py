"""Column tables of the catalog's views, read from DuckDB itself so they cannot drift.

Every view the catalog defines is created in an in-memory DuckDB over empty tables of the lake's
pinned schemas, then described: a column's name and type are what a user's query sees. The
docs must show every view (`missing_views` fails the build when one is left out).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

# The one place that names the catalog: change these imports when the lake code moves.
from vectorflow.lake.catalog import view_definitions
from vectorflow.lake.schema import DATASETS
from vectorflow.lake.storage import LocalStorage

#: A lake at a made-up place: the views' SQL is only described, never run over files.
LAKE = LocalStorage(Path("/lake"), Path("/"))


def _catalog(folder: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding every catalog view, datasets as empty Parquet files."""
    con = duckdb.connect()
    for name, dataset in DATASETS.items():
        path = folder / f"{name}.parquet"  # read as Parquet, so types are what users see
        pq.write_table(pa.table({f.name: [] for f in dataset.schema}, schema=dataset.schema), path)
        con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{path}')")
    pending = {n: sql for n, sql in view_definitions(LAKE).items() if n not in DATASETS}
    while pending:  # views read other views: create each once those it reads exist
        created = []
        for name, sql in pending.items():
            try:
                con.execute(f'CREATE VIEW "{name}" AS {sql}')
            except duckdb.CatalogException:
                continue
            created.append(name)
        if not created:
            raise RuntimeError(f"catalog views that cannot be created: {', '.join(pending)}")
        for name in created:
            del pending[name]
    return con


_COLUMNS: dict[str, list[tuple[str, str]]] = {}


def columns() -> dict[str, list[tuple[str, str]]]:
    """(column, DuckDB type) of every catalog view, by view name."""
    if not _COLUMNS:
        with tempfile.TemporaryDirectory() as folder:
            con = _catalog(Path(folder))
            derived = [n for n in view_definitions(LAKE) if n not in DATASETS]
            for name in [*DATASETS, *derived]:
                rows = con.execute(f'DESCRIBE "{name}"').fetchall()
                _COLUMNS[name] = [(r[0], r[1]) for r in rows]
            con.close()
    return _COLUMNS


def key_of(view: str) -> tuple[str, ...]:
    """The natural key of a dataset view (unique in it), () for derived views."""
    dataset = DATASETS.get(view)
    return dataset.key if dataset else ()


def render(view: str | None) -> str:
    """The column table of one view: name, type, and whether it is part of the key."""
    if view not in columns():
        raise ValueError(f"no catalog view {view!r}; views: {', '.join(columns())}")
    key = key_of(view)
    lines = ["| column | type |", "|---|---|"]
    for name, kind in columns()[view]:
        lines.append(f"| `{name}`{' (key)' if name in key else ''} | `{kind}` |")
    return "\n".join(lines)


def missing_views(documented: set[str]) -> list[str]:
    """Catalog views the docs show no column table of."""
    return [name for name in columns() if name not in documented]


def datasets_table(_argument: str | None = None) -> str:
    """Every dataset: partition folders, natural key, time column, how it is stored."""
    lines = ["| dataset | partition folders | key | file names span | kind | compacted per |",
             "|---|---|---|---|---|---|"]
    for name, ds in DATASETS.items():
        folders = "/".join(f"{p}=…" for p in ds.partitions)
        kind = "range (snapshots)" if ds.complete_ranges else "keyed"
        period = ds.period if ds.complete_ranges else "–"
        lines.append(f"| `{name}` | `{folders}` | {', '.join(ds.key)} | `{ds.order_by}` | "
                     f"{kind} | {period} |")
    return "\n".join(lines)
