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
from collections.abc import Iterable

import duckdb

from vectorflow.lake import catalog_file
from vectorflow.lake.catalog_file import first_line
from vectorflow.lake.files import reading_again
from vectorflow.lake.market_views import market_views
from vectorflow.lake.schema import CANDLES, DATASETS
from vectorflow.lake.signal_views import signal_coverage_sql
from vectorflow.lake.storage import Storage
from vectorflow.lineage import code_version
from vectorflow.settings import Settings

log = logging.getLogger(__name__)

STORAGE = {"storage_compatibility_version": "v1.0.0"}


#: latest_playbooks: the newest playbook per series; a row that is no playbook (error, skipped)
#: only when the series has nothing else; at one as_of a usable one comes first
LATEST_PLAYBOOKS_SQL = """
SELECT * FROM playbooks
QUALIFY row_number() OVER (
    PARTITION BY exchange, market, symbol, timeframe
    ORDER BY status IN ('error', 'skipped_stale', 'skipped_budget'),
             as_of DESC,
             CASE WHEN status IN ('ok', 'repaired') THEN 0 WHEN status = 'abstained' THEN 1
                  ELSE 2 END,
             created_at DESC
) = 1"""

_GRADED_PLAYBOOKS = """
WITH graded AS (
    SELECT p.source, p.model, p.exchange, p.market, p.symbol,
           coalesce(p.regime, 'unknown') AS regime, p.bias, p.confidence,
           CASE WHEN p.confidence < 25 THEN '0-24' WHEN p.confidence < 50 THEN '25-49'
                WHEN p.confidence < 75 THEN '50-74' ELSE '75-100' END AS confidence_band,
           o.triggered, o.r_multiple, o.avoided_loss,
           CASE WHEN p.bias = 'no_trade' THEN o.avoided_loss
                WHEN o.triggered THEN o.r_multiple > 0 END AS success
    FROM playbooks p
    JOIN (SELECT * FROM playbook_outcomes
          QUALIFY row_number() OVER (PARTITION BY playbook_id ORDER BY evaluated_at DESC) = 1
         ) o USING (playbook_id)
)"""

#: playbook_scorecard: graded playbooks (the newest grade of each) by source, model, venue
#: (exchange, market), symbol, regime and confidence band: win rate and R over the triggered
#: directional ones, how often a no_trade avoided a loss, and the Brier score of confidence
PLAYBOOK_SCORECARD_SQL = f"""{_GRADED_PLAYBOOKS}
SELECT source, model, exchange, market, symbol, regime, confidence_band,
       count(*) AS playbooks,
       count(*) FILTER (WHERE bias = 'no_trade') AS no_trade,
       avg(CASE WHEN triggered THEN 1.0 ELSE 0.0 END) FILTER (WHERE bias <> 'no_trade')
           AS share_triggered,
       avg(CASE WHEN r_multiple > 0 THEN 1.0 ELSE 0.0 END) FILTER (WHERE triggered) AS win_rate,
       avg(r_multiple) FILTER (WHERE triggered) AS avg_r,
       coalesce(sum(r_multiple) FILTER (WHERE triggered), 0) AS total_r,
       avg(CASE WHEN avoided_loss THEN 1.0 ELSE 0.0 END) FILTER (WHERE bias = 'no_trade')
           AS avoided_loss_share,
       avg(power(confidence / 100.0 - CASE WHEN success THEN 1.0 ELSE 0.0 END, 2))
           FILTER (WHERE success IS NOT NULL) AS brier
FROM graded
GROUP BY ALL"""

#: playbook_calibration: per source and model, confidence against outcomes (a triggered trade
#: won, or a no_trade avoided a loss) by confidence band and over all (`band` = 'all')
PLAYBOOK_CALIBRATION_SQL = f"""{_GRADED_PLAYBOOKS}
SELECT source, model, coalesce(confidence_band, 'all') AS confidence_band,
       count(*) AS scored,
       avg(confidence) / 100.0 AS mean_confidence,
       avg(CASE WHEN success THEN 1.0 ELSE 0.0 END) AS success_rate,
       avg(power(confidence / 100.0 - CASE WHEN success THEN 1.0 ELSE 0.0 END, 2)) AS brier
FROM graded
WHERE success IS NOT NULL
GROUP BY GROUPING SETS ((source, model, confidence_band), (source, model))"""


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


def view_definitions(storage: Storage) -> dict[str, str]:
    """Every catalog view by name, as SQL over absolute lake paths."""
    views = {name: storage.view_sql(ds) for name, ds in DATASETS.items()}
    views["signal_coverage"] = signal_coverage_sql(code_version())  # before coverage reads it
    views.update(market_views())  # candle_gaps, orderbook_stats, market_snapshot, coverage
    views["latest_playbooks"] = LATEST_PLAYBOOKS_SQL
    views["playbook_scorecard"] = PLAYBOOK_SCORECARD_SQL
    views["playbook_calibration"] = PLAYBOOK_CALIBRATION_SQL
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


def connect(settings: Settings, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the catalog of `settings` with the session time zone set to UTC
    (that reads their lake wherever it is, `s3://` included)."""
    catalog = str(settings.catalog_path)
    config = dict(STORAGE) if not read_only else {}
    con = settings.storage.connect(catalog, read_only=read_only, config=config)
    con.execute("SET TimeZone = 'UTC'")
    return con


def connect_in_memory(storage: Storage) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the catalog's views over `storage` (when the file cannot be
    rewritten for it: a read-only copy of a data dir, a catalog another process holds)."""
    con = storage.connect()
    con.execute("SET TimeZone = 'UTC'")
    _create_views(con, view_definitions(storage))
    return con


def _create_views(con: duckdb.DuckDBPyConnection, views: dict[str, str]) -> None:
    for name, sql in views.items():  # a view's dependencies come before it
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')


def _current_fingerprint(settings: Settings) -> str | None:
    if not settings.catalog_path.exists():
        return None
    con = connect(settings, read_only=True)
    try:
        row = con.execute(
            "SELECT value FROM vectorflow_meta WHERE key = 'views_fingerprint'"
        ).fetchone()
        return row[0] if row else None
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def _ensure_schema_files(storage: Storage) -> None:
    for dataset in DATASETS.values():
        path = storage.schema_file(dataset)
        if storage.exists(path):
            stored = storage.parquet_file(path).schema_arrow
            if stored.equals(dataset.schema, check_metadata=False):
                continue
        storage.put(dataset.schema.empty_table(), path)  # columns were added: rewritten


def relink_partitions(storage: Storage, datasets: Iterable[str] | None = None) -> list[str]:
    """Link every range-dataset partition (of `datasets`) whose `current` is missing or
    dangling to its newest complete snapshot, each saying so in a warning: a view never reads
    such a partition as empty. What was done."""
    from vectorflow.lake.compact import range_datasets

    done = []
    for dataset in range_datasets():
        if datasets is None or dataset.name in datasets:
            done += storage.repair_links(dataset)
    return done


def _rebuild(settings: Settings, views: dict[str, str], fingerprint: str) -> None:
    con = connect(settings, read_only=False)
    try:
        con.execute("BEGIN")
        _create_views(con, views)
        con.execute(
            "CREATE TABLE IF NOT EXISTS vectorflow_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"
        )
        con.execute("DELETE FROM vectorflow_meta")
        con.executemany(
            "INSERT INTO vectorflow_meta VALUES (?, ?)",
            [
                ["views_fingerprint", fingerprint],  # it covers the lake's paths (a moved dir)
                ["data_dir", str(settings.data_dir)],
                ["lake", str(settings.storage.root)],
            ],
        )
        con.execute("COMMIT")
    finally:
        con.close()


def refresh_catalog(settings: Settings, *, attempts: int = 3, wait_s: float = 0.5) -> bool:
    """Make the catalog's views match the lake's datasets; False (never an error) if it is locked
    or cannot be written.

    A locked catalog (a user's session) is retried a few times, then left for the next run:
    views already there keep working because they read the lake through globs. A damaged one
    is moved to `<data dir>/quarantine/` and rebuilt (it holds views only).
    """
    storage, catalog = settings.storage, settings.catalog_path
    _ensure_schema_files(storage)
    relink_partitions(storage)
    views = view_definitions(storage)
    fingerprint = _fingerprint(views)
    for attempt in range(attempts):
        try:
            if _current_fingerprint(settings) == fingerprint:
                return True
            _rebuild(settings, views, fingerprint)
            log.info("catalog views rebuilt in %s", catalog)
            return True
        except duckdb.Error as exc:
            failure = catalog_file.failure(exc)
            if failure is None:
                raise
            if failure == catalog_file.DAMAGED and catalog_file.quarantine(
                catalog, settings.data_dir, first_line(exc)
            ):
                continue  # moved aside: the next attempt builds it anew
            if failure != catalog_file.LOCKED:
                log.warning("catalog %s cannot be rewritten (%s)", catalog, first_line(exc))
                return False
            if attempt + 1 < attempts:
                time.sleep(wait_s * (attempt + 1))
            else:
                log.warning(
                    "catalog %s is locked (%s); views will be rebuilt on the next run",
                    catalog,
                    first_line(exc),
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


def read_view(storage: Storage, name: str, where: dict[str, object] | None = None,
              columns: str = "*"):
    """A catalog view's rows as a DataFrame, computed in memory (the catalog file stays closed).

    Views that read other views get those as CTEs. `where` holds equality filters on the view's
    columns (bound as parameters, never spliced).
    """
    _ensure_schema_files(storage)
    views = view_definitions(storage)
    needed = _with_dependencies(views, name)
    relink_partitions(storage, needed)
    ctes = ",\n".join(f'"{v}" AS ({views[v]})' for v in needed)
    where = where or {}
    clause = " AND ".join(f'"{k}" = ?' for k in where) or "true"
    con = storage.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        sql = f'WITH {ctes}\nSELECT {columns} FROM "{name}" WHERE {clause}'
        return execute_retrying(con, sql, list(where.values())).df()
    finally:
        con.close()


__all__ = ["CANDLES", "connect", "connect_in_memory", "read_view", "refresh_catalog",
           "view_definitions"]
