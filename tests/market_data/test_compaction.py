"""Compaction, retention and pruning: nothing lost, nothing duplicated, even while ingest runs."""

from __future__ import annotations

import threading
import time

import duckdb

from tests.conftest import query_catalog, run_cli, sim_env, sim_settings
from vectorflow.config import load_settings
from vectorflow.lake.catalog import connect, execute_retrying, refresh_catalog
from vectorflow.lake.compact import compact_lake, compact_partition
from vectorflow.lake.schema import CANDLES
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.market_data import ingest_market_unit
from vectorflow.timeframes import parse_time
from vectorflow.units import Unit

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
VALUES = "exchange, market, symbol, timeframe, open_time, open, high, low, close, volume"


def _with_lake(settings, **changes):
    return settings.with_overrides(lake=settings.lake.model_copy(update=changes))


class _Reader(threading.Thread):
    """Queries the candles view again and again; records what every answer looked like.

    A query that lists a file a merge removes a moment later fails ("Cannot open file"): that
    is the one thing a reader of a file lake sees of a concurrent rewrite, and running the
    query again answers (`execute_retrying`). Any other error is recorded.
    """

    def __init__(self, data_dir):
        super().__init__(daemon=True)
        self.settings, self.stop = load_settings(data_dir), threading.Event()
        self.answers, self.errors = [], []

    def run(self):
        while not self.stop.is_set():
            con = connect(self.settings, read_only=True)
            try:
                self.answers.append(
                    execute_retrying(
                        con,
                        "SELECT count(*), count(DISTINCT open_time), "
                        "(epoch_ms(max(open_time)) - epoch_ms(min(open_time))) // 60000 + 1 "
                        "FROM candles",
                        attempts=8,  # the compactor below runs without a pause
                    ).fetchone()
                )
            except duckdb.Error as exc:
                self.errors.append(str(exc))
            finally:
                con.close()


def test_compaction_during_a_concurrent_ingest_loses_and_duplicates_nothing(
    fresh_sim, data_dir, tmp_path
):
    # merge_files=3: ingest merges its own small files too (with the default 8, compaction
    # every 50 ms kept each period under 8 and the append-time merge never ran here)
    settings = _with_lake(sim_settings(fresh_sim, data_dir), delete_grace_seconds=1.0,
                          merge_files=3)  # fmt: skip
    unit = Unit("binance", "linear", "BTC/USDT:USDT", "1m")
    start = parse_time("2026-05-31T18:00:00Z")  # the run crosses into June: May gets compacted
    fresh_sim.set_now(start + 4 * HOUR + 30_000)
    ingest_series(unit, start, fresh_sim.now_ms(), settings, clock=fresh_sim.now_ms)
    refresh_catalog(load_settings(data_dir))
    folder = next(data_dir.glob("lake/candles/*/*/*/timeframe=1m"))
    reader, done, merges = _Reader(data_dir), threading.Event(), []

    def compact_forever():
        while not done.is_set():
            report = compact_partition(CANDLES, folder, settings, now=fresh_sim.now_ms())
            merges.append(report.files_out + report.compacted)
            time.sleep(0.05)

    compactor = threading.Thread(target=compact_forever, daemon=True)
    reader.start()
    compactor.start()
    for _ in range(40):  # 40 runs of 20 minutes each
        fresh_sim.set_now(fresh_sim.now_ms() + 20 * MINUTE)
        ingest_series(unit, None, fresh_sim.now_ms(), settings, clock=fresh_sim.now_ms)
    done.set()
    compactor.join()
    time.sleep(0.3)
    reader.stop.set()
    reader.join()
    compact_lake(settings, ["candles"], now=fresh_sim.now_ms())  # waits for the merges to settle

    assert reader.errors == [] and len(reader.answers) > 5
    # compaction rewrote the partition while ingest ran (its first pass compacts May at least;
    # ingest merged its own small files meanwhile, so how often compaction finds work varies)
    assert sum(merges) >= 1
    for rows, distinct, span in reader.answers:  # every answer: unique keys, no hole
        assert rows == distinct == span
    counts = [a[0] for a in reader.answers]
    assert counts == sorted(counts)  # rows only ever appear
    files = settings.storage.files(folder, CANDLES)
    assert any(f.compact for f in files)  # May is one compacted file
    got = query_catalog(data_dir, f"SELECT {VALUES} FROM candles ORDER BY open_time")
    other = tmp_path / "straight"
    other.mkdir()
    ingest_series(
        unit, start, fresh_sim.now_ms(), sim_settings(fresh_sim, other), clock=fresh_sim.now_ms
    )
    assert got == query_catalog(other, f"SELECT {VALUES} FROM candles ORDER BY open_time")


def test_compaction_never_merges_across_a_hole_nobody_fetched(fresh_sim, data_dir):
    settings = _with_lake(sim_settings(fresh_sim, data_dir), delete_grace_seconds=0)
    unit = Unit("bybit", "spot", "BTC/USDT", "1h")
    t0 = parse_time("2026-05-02T00:00:00Z")
    ingest_series(unit, t0, t0 + 30 * HOUR, settings, clock=fresh_sim.now_ms)
    ingest_series(unit, t0 + 40 * HOUR, t0 + 60 * HOUR, settings, clock=fresh_sim.now_ms)
    compact_lake(settings, ["candles"], now=fresh_sim.now_ms())
    folder = next(data_dir.glob("lake/candles/*/*/*/timeframe=1h"))
    files = settings.storage.files(folder, CANDLES)
    names = sorted((f.first_ms, f.last_ms, f.compact) for f in files)
    assert names == [(t0, t0 + 29 * HOUR, True), (t0 + 40 * HOUR, t0 + 59 * HOUR, True)]
    fresh_sim.clear_requests()
    report = ingest_series(unit, t0, t0 + 60 * HOUR, settings, clock=fresh_sim.now_ms)
    assert report.rows_written == 10  # the hole is still known to be missing, and is fetched


def test_retention_drops_old_order_book_days(fresh_sim, data_dir):
    settings = _with_lake(sim_settings(fresh_sim, data_dir), delete_grace_seconds=0)
    unit = Unit("bybit", "linear", "BTC/USDT:USDT", None, "orderbook_levels")
    now = fresh_sim.now_ms()
    for days_ago in (40, 35, 2, 0):
        fresh_sim.set_now(now - days_ago * DAY)
        ingest_market_unit(unit, None, fresh_sim.now_ms(), settings, 10, clock=fresh_sim.now_ms)
    (books,) = query_catalog(data_dir, "SELECT count(DISTINCT snapshot_time) FROM orderbook_levels")
    assert books == (4,)
    compact_lake(settings, ["orderbook_levels"], now=now)
    rows = query_catalog(
        data_dir,
        "SELECT rows, first_time >= now() - INTERVAL 31 DAY FROM coverage "
        "WHERE dataset = 'orderbook_levels'",
    )
    assert rows[0][0] == 2
    (kept,) = query_catalog(data_dir, "SELECT min(epoch_ms(snapshot_time)) FROM orderbook_levels")
    assert kept[0] >= now - 30 * DAY - DAY  # the retention is in whole days


def test_prune_before_and_delete_a_series_from_the_command_line(sim, data_dir):
    settings = sim_settings(sim, data_dir)
    now = sim.now_ms()
    for exchange in ("binance", "bybit"):
        unit = Unit(exchange, "linear", "BTC/USDT:USDT", "1h")
        ingest_series(unit, now - 10 * DAY, now, settings, clock=sim.now_ms)
    env = sim_env(sim, data_dir)
    cutoff = now // DAY * DAY - 3 * DAY
    done = run_cli(["prune", "--dataset", "candles", "--before", str(cutoff)], env)
    assert done.returncode == 0, done.stderr
    rows = query_catalog(data_dir, "SELECT exchange, epoch_ms(first_time) FROM coverage ORDER BY 1")
    assert rows == [("binance", cutoff), ("bybit", cutoff)]
    refused = run_cli(["prune", "--dataset", "candles", "--all"], env)
    assert refused.returncode == 2 and "--exchange" in refused.stderr
    gone = run_cli(
        [
            "prune",
            "--dataset",
            "candles",
            "--all",
            "--exchange",
            "bybit",
            "--symbol",
            "BTC/USDT:USDT",
        ],
        env,
    )
    assert gone.returncode == 0, gone.stderr
    assert query_catalog(data_dir, "SELECT exchange FROM coverage") == [("binance",)]


def test_this_years_file_absorbs_each_month_that_closes_while_queries_run(fresh_sim, data_dir):
    settings = _with_lake(sim_settings(fresh_sim, data_dir), delete_grace_seconds=0)
    unit = Unit("bybit", "spot", "BTC/USDT", "1h")
    folder_glob = "lake/candles/*/*/*/timeframe=1h"
    t0, t1 = parse_time("2026-04-10T00:00:00Z"), parse_time("2026-05-31T12:00:00Z")
    ingest_series(unit, t0, t1, settings, clock=fresh_sim.now_ms)
    compact_lake(settings, ["candles"], now=parse_time("2026-05-15T00:00:00Z"))
    folder = next(data_dir.glob(folder_glob))
    assert not any(f.compact for f in settings.storage.files(folder, CANDLES))  # May: not final
    compact_lake(settings, ["candles"], now=parse_time("2026-06-01T00:30:00Z"))
    (may,) = settings.storage.files(folder, CANDLES)
    assert may.compact and (may.first_ms, may.last_ms) == (t0, t1 - HOUR)
    ingest_series(unit, t1, fresh_sim.now_ms(), settings, clock=fresh_sim.now_ms)  # into June
    refresh_catalog(load_settings(data_dir))
    expected = (fresh_sim.now_ms() // HOUR * HOUR - t0) // HOUR
    answers, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            con = connect(load_settings(data_dir), read_only=True)
            try:
                sql = "SELECT count(*), count(DISTINCT open_time) FROM candles"
                answers.append(execute_retrying(con, sql, attempts=8).fetchone())
            finally:
                con.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.2)
    compact_lake(settings, ["candles"], now=parse_time("2026-07-01T00:30:00Z"))  # June closed
    time.sleep(0.2)
    stop.set()
    reader.join()
    (year,) = settings.storage.files(folder, CANDLES)  # renamed back, merged with June, again
    assert year.compact and year.first_ms == t0
    assert answers and all(a == (expected, expected) for a in answers)  # never a row twice
