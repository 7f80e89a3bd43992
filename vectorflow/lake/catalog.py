"""The DuckDB catalog: views (and a little metadata) over the lake, never the data itself.

The pipeline opens the catalog only to (re)build views, and only when their definitions changed
(a new view, a moved data dir). Views read the lake through globs, so new files appear in them
without any rebuild, and a user's read-only session never blocks a run. The file is written in
DuckDB's oldest storage format so the `duckdb` 1.5 command line opens it too.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path

import duckdb

from vectorflow.lake import store
from vectorflow.lake.files import parquet_file, reading_again, write_schema_file
from vectorflow.lake.market_views import market_views
from vectorflow.lake.objects import LakePath, is_object, lake_connection
from vectorflow.lake.scan import range_dataset_scan
from vectorflow.lake.schema import CANDLES, DATASETS, Dataset

log = logging.getLogger(__name__)

STORAGE = {"storage_compatibility_version": "v1.0.0"}


def _quote(path: LakePath) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def lake_of(data_dir: Path) -> LakePath:
    """The lake of a data dir (its settings' `lake_url`; the object store set up if it is one)."""
    from vectorflow.settings import load_settings

    return load_settings(data_dir).lake_dir


def dataset_scan(lake: LakePath, dataset: Dataset) -> str:
    """SQL reading every visible file of `dataset`, older schemas included, newest row per key.

    On disk a range dataset is read as its partitions' current snapshots, which never
    overlap (`vectorflow.lake.scan`); an object store has no snapshots (`vectorflow.lake.
    objects`), so there, as for every other dataset, the newest row per key is kept.
    """
    if dataset.complete_ranges and not is_object(lake):
        return range_dataset_scan(lake, dataset)
    glob = _quote(lake / dataset.name / "**" / "*.parquet")
    columns = dataset.select_list()
    key = ", ".join(dataset.key)
    return (
        f"SELECT {columns} FROM read_parquet({glob}, union_by_name = true, "
        f"hive_partitioning = false) "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ingested_at DESC) = 1"
    )


#: latest_playbooks: the newest playbook per series; at one as_of a usable one comes first
LATEST_PLAYBOOKS_SQL = """
SELECT * FROM playbooks
QUALIFY row_number() OVER (
    PARTITION BY exchange, market, symbol, timeframe
    ORDER BY as_of DESC,
             CASE WHEN status IN ('ok', 'repaired') THEN 0 WHEN status = 'abstained' THEN 1
                  ELSE 2 END,
             created_at DESC
) = 1"""

#: playbook_scorecard: graded playbooks (the newest grade of each) by source, model, symbol,
#: regime and confidence band; win rate and average R over the triggered ones
PLAYBOOK_SCORECARD_SQL = """
WITH graded AS (
    SELECT p.source, p.model, p.symbol, coalesce(p.regime, 'unknown') AS regime,
           CASE WHEN p.confidence < 25 THEN '0-24' WHEN p.confidence < 50 THEN '25-49'
                WHEN p.confidence < 75 THEN '50-74' ELSE '75-100' END AS confidence_band,
           o.triggered, o.r_multiple
    FROM playbooks p
    JOIN (SELECT * FROM playbook_outcomes
          QUALIFY row_number() OVER (PARTITION BY playbook_id ORDER BY evaluated_at DESC) = 1
         ) o USING (playbook_id)
)
SELECT source, model, symbol, regime, confidence_band,
       count(*) AS playbooks,
       avg(CASE WHEN triggered THEN 1.0 ELSE 0.0 END) AS share_triggered,
       avg(CASE WHEN r_multiple > 0 THEN 1.0 ELSE 0.0 END) FILTER (WHERE triggered) AS win_rate,
       avg(r_multiple) FILTER (WHERE triggered) AS avg_r,
       coalesce(sum(r_multiple), 0) AS total_r
FROM graded
GROUP BY ALL"""


_SERIES_KEY = "exchange, market, symbol, timeframe, strategy"
_BOARD_METRICS = (
    "total_return", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown", "win_rate",
    "profit_factor", "trades", "exposure", "benchmark_return", "null_reasons",
)  # fmt: skip

#: strategy_leaderboard: per series and strategy, the latest backtest's out-of-sample result:
#: each window's in-sample choice (rank 1 by the selection metric) run on that window's
#: out-of-sample bars, chained (`chained` rows; never a pick among out-of-sample runs), with
#: the overfitting statistics and the latest choice's params and in-sample run beside it
STRATEGY_LEADERBOARD_SQL = f"""
WITH latest AS (
    SELECT * FROM backtest_runs WHERE sample = 'chained'
    QUALIFY row_number() OVER (PARTITION BY {_SERIES_KEY} ORDER BY run_at DESC, run_id) = 1
)
SELECT o.exchange, o.market, o.symbol, o.timeframe, o.strategy, o.params, o.run_at, o.split,
       o.oos_windows, o.window_start, o.window_end, o.selection_metric, o.trials, o.dsr, o.pbo,
       {", ".join(f"o.{m} AS oos_{m}" for m in _BOARD_METRICS)},
       {", ".join(f"i.{m} AS is_{m}" for m in _BOARD_METRICS)},
       o.fees, o.slippage, o.batch_id, o.run_id, o.is_run_id
FROM latest o LEFT JOIN backtest_runs i ON i.run_id = o.is_run_id"""

#: strategy_history: the same honest figure night by night: per series, strategy and backtest,
#: the chained out-of-sample result of the in-sample choices and its overfitting statistics
STRATEGY_HISTORY_SQL = f"""
SELECT exchange, market, symbol, timeframe, strategy, run_at, split, selection_metric, params,
       oos_windows, window_start, window_end, trials, dsr, pbo,
       {", ".join(f"{m} AS oos_{m}" for m in _BOARD_METRICS)}, batch_id, run_id
FROM backtest_runs WHERE sample = 'chained'"""


def view_definitions(lake: LakePath) -> dict[str, str]:
    """Every catalog view by name, as SQL over absolute lake paths."""
    views = {name: dataset_scan(lake, ds) for name, ds in DATASETS.items()}
    views.update(market_views())  # candle_gaps, orderbook_stats, market_snapshot, coverage
    views["latest_playbooks"] = LATEST_PLAYBOOKS_SQL
    views["playbook_scorecard"] = PLAYBOOK_SCORECARD_SQL
    views["strategy_leaderboard"] = STRATEGY_LEADERBOARD_SQL
    views["strategy_history"] = STRATEGY_HISTORY_SQL
    return views


def execute_retrying(
    con: duckdb.DuckDBPyConnection, sql: str, params=None, *, attempts: int = 3
) -> duckdb.DuckDBPyConnection:
    """`con.execute`, run again when a file it listed was removed before it read it.

    Compaction and merges replace files while queries run; a query that listed a replaced
    file a moment before fails with "Cannot open file ... No such file"; a rerun lists anew.
    """
    return reading_again(lambda: con.execute(sql, params), attempts)


def _fingerprint(views: dict[str, str]) -> str:
    text = "\n".join(f"{name}:{sql}" for name, sql in sorted(views.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def connect(catalog: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the catalog with the session time zone set to UTC."""
    lake_of(catalog.parent)  # sets up the object store, if the lake is in one
    con = lake_connection(
        str(catalog), read_only=read_only, config=dict(STORAGE) if not read_only else {}
    )
    con.execute("SET TimeZone = 'UTC'")
    return con


def _current_fingerprint(catalog: Path) -> str | None:
    if not catalog.exists():
        return None
    con = connect(catalog, read_only=True)
    try:
        row = con.execute(
            "SELECT value FROM vectorflow_meta WHERE key = 'views_fingerprint'"
        ).fetchone()
        return row[0] if row else None
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def _ensure_schema_files(lake: LakePath) -> None:
    for dataset in DATASETS.values():
        path = write_schema_file(lake, dataset)
        if not parquet_file(path).schema_arrow.equals(dataset.schema, check_metadata=False):
            path.unlink()  # columns were added: rewrite it with the current schema
            write_schema_file(lake, dataset)


def adopt_loose_files(lake: LakePath) -> int:
    """Move data files lying directly in range-dataset partition folders into snapshots.

    Migrates partitions of the older flat layout (the views read `current` snapshots only);
    how many partitions it changed.
    """
    from vectorflow.lake.compact import partition_folders, range_datasets

    if is_object(lake):
        return 0  # an object store has no snapshots: nothing to adopt
    changed = 0
    for dataset in range_datasets():
        for folder in partition_folders(lake, dataset):
            changed += store.adopt(dataset, folder)
    if changed:
        log.info("moved the files of %d partitions into snapshots", changed)
    return changed


def _rebuild(catalog: Path, views: dict[str, str], fingerprint: str, data_dir: Path) -> None:
    con = connect(catalog, read_only=False)
    try:
        con.execute("BEGIN")
        for name, sql in views.items():
            con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')
        con.execute(
            "CREATE TABLE IF NOT EXISTS vectorflow_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"
        )
        con.execute("DELETE FROM vectorflow_meta")
        con.executemany(
            "INSERT INTO vectorflow_meta VALUES (?, ?)",
            [["views_fingerprint", fingerprint], ["data_dir", str(data_dir)]],
        )
        con.execute("COMMIT")
    finally:
        con.close()


def refresh_catalog(data_dir: Path, *, attempts: int = 3, wait_s: float = 0.5) -> bool:
    """Make the catalog's views match the lake's datasets; False (never an error) if it is locked.

    A locked catalog (a user's session) is retried a few times, then left for the next run:
    views already there keep working because they read the lake through globs.
    """
    lake = lake_of(data_dir)
    catalog = data_dir / "vectorflow.duckdb"
    _ensure_schema_files(lake)
    adopt_loose_files(lake)
    views = view_definitions(lake)
    fingerprint = _fingerprint(views)
    for attempt in range(attempts):
        try:
            if _current_fingerprint(catalog) == fingerprint:
                return True
            _rebuild(catalog, views, fingerprint, data_dir)
            log.info("catalog views rebuilt in %s", catalog)
            return True
        except duckdb.IOException as exc:  # the file is locked by another process
            if attempt + 1 < attempts:
                time.sleep(wait_s * (attempt + 1))
            else:
                log.warning(
                    "catalog %s is locked (%s); views will be rebuilt on the next run",
                    catalog,
                    str(exc).splitlines()[0],
                )
    return False


def _with_dependencies(views: dict[str, str], name: str) -> list[str]:
    """`name` and the views it reads, transitively, those it reads first."""
    order: list[str] = []

    def visit(view: str) -> None:
        for other in views:
            if other != view and other not in order and re.search(rf"\b{other}\b", views[view]):
                visit(other)
        if view not in order:
            order.append(view)

    visit(name)
    return order


def read_view(lake: LakePath, name: str, where: dict[str, object] | None = None,
              columns: str = "*"):
    """A catalog view's rows as a DataFrame, computed in memory (the catalog file stays closed).

    Views that read other views get those as CTEs. `where` holds equality filters on the view's
    columns (bound as parameters, never spliced).
    """
    _ensure_schema_files(lake)
    views = view_definitions(lake)
    ctes = ",\n".join(f'"{v}" AS ({views[v]})' for v in _with_dependencies(views, name))
    where = where or {}
    clause = " AND ".join(f'"{k}" = ?' for k in where) or "true"
    con = lake_connection()
    try:
        con.execute("SET TimeZone = 'UTC'")
        sql = f'WITH {ctes}\nSELECT {columns} FROM "{name}" WHERE {clause}'
        return execute_retrying(con, sql, list(where.values())).df()
    finally:
        con.close()


__all__ = ["CANDLES", "connect", "dataset_scan", "read_view", "refresh_catalog",
           "view_definitions"]
