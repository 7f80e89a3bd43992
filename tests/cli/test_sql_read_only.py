"""`vectorflow sql` only reads: writes are refused, every documented query answers, and a copied,
read-only or damaged data dir is read from its own lake."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.cli.read_only import read_only
from tests.cli.test_bad_input import assert_one_clear_line
from tests.conftest import query_catalog, run_cli, sim_settings
from vectorflow.cli import INVALID, OK, QUERY_TO_TRY, main
from vectorflow.cli.market_data import DEMO_QUERIES
from vectorflow.lake.catalog import refresh_catalog
from vectorflow.pipelines.candles import ingest_series
from vectorflow.pipelines.signals import update_signals
from vectorflow.units import Unit

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400_000
COUNT = "SELECT count(*) AS n FROM candles"


@pytest.fixture(scope="module")
def lake_dir(sim, tmp_path_factory) -> Path:
    """A data dir with three days of hourly candles (and their signals) of four series."""
    data_dir = tmp_path_factory.mktemp("sql") / "data"
    settings = sim_settings(sim, data_dir)
    now = sim.now_ms()
    for exchange in ("binance", "bybit"):
        for market, symbol in (("spot", "BTC/USDT"), ("linear", "BTC/USDT:USDT")):
            unit = Unit(exchange, market, symbol, "1h")
            ingest_series(unit, now - 3 * DAY, now, settings, clock=sim.now_ms)
            update_signals(unit, settings)
    refresh_catalog(settings)
    return data_dir


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every file under `folder` (symlinks as their targets) and a hash of its bytes."""
    prints = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            prints[str(path.relative_to(folder))] = "-> " + str(path.readlink())
        elif path.is_file():
            prints[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return prints


def _count(data_dir: Path, wrapper=()) -> int:
    done = run_cli(["sql", COUNT, "--format", "csv"], {"VECTORFLOW_DATA_DIR": str(data_dir)},
                   timeout=60, wrapper=wrapper)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.splitlines()[1])


def test_copy_and_attach_are_refused_and_nothing_changes(lake_dir, tmp_path):
    # Regression: COPY ... TO overwrote a lake file, and ATTACH wrote a database outside
    before = _fingerprint(lake_dir)
    lake_file = next((lake_dir / "lake" / "candles").rglob("current/*.parquet"))
    other = tmp_path / "other.duckdb"
    env = {"VECTORFLOW_DATA_DIR": str(lake_dir)}
    copy = run_cli(["sql", f"COPY (SELECT 1 AS x) TO '{lake_file}' (FORMAT parquet)"], env)
    assert_one_clear_line(copy, "COPY statement")
    attach = run_cli(["sql", f"ATTACH '{other}' AS e (READ_WRITE); CREATE TABLE e.t (x INT)"],
                     env)  # fmt: skip
    assert_one_clear_line(attach, "ATTACH statement")
    assert not other.exists()
    assert _fingerprint(lake_dir) == before


WRITES = {
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "create-table": "CREATE TABLE t AS SELECT 1 AS x",
    "create-view": "CREATE OR REPLACE VIEW candles AS SELECT 1 AS x",
    "drop": "DROP VIEW candles",
    "export": "EXPORT DATABASE 'lake/exported'",
    "set": "SET enable_external_access = true",
    "pragma": "PRAGMA enable_profiling",
    "explain-analyze-copy": "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO 'lake/x.parquet'",
    "after-a-select": "SELECT 1; COPY (SELECT 1 AS x) TO 'lake/x.parquet'",
}


@pytest.mark.parametrize("sql", WRITES.values(), ids=WRITES)
def test_statements_that_write_or_load_are_refused(sql, lake_dir, monkeypatch, capsys):
    before = _fingerprint(lake_dir)
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(lake_dir))
    monkeypatch.chdir(lake_dir)  # relative paths would land in the data dir
    assert main(["sql", sql]) == INVALID
    err = capsys.readouterr().err
    assert err.startswith("error: vectorflow sql only reads") and len(err.splitlines()) == 1
    assert _fingerprint(lake_dir) == before


def test_files_outside_the_lake_cannot_be_read_and_the_lake_can(lake_dir, monkeypatch, capsys):
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(lake_dir))
    outside = lake_dir.parent / "secret.csv"
    outside.write_text("a,b\n1,2\n")
    assert main(["sql", f"SELECT * FROM read_csv('{outside}')"]) == INVALID
    assert "Permission Error" in capsys.readouterr().err
    glob = lake_dir / "lake" / "candles" / "**" / "current" / "*.parquet"
    assert main(["sql", f"SELECT count(*) AS n FROM read_parquet('{glob}')", "--format",
                 "csv"]) == OK  # fmt: skip
    assert int(capsys.readouterr().out.splitlines()[1]) > 0


def documented_queries() -> list[str]:
    """Every query the README and docs/ show for `vectorflow sql` or the catalog, and those the
    CLI prints (the demo's, the help's)."""
    parse = duckdb.connect()
    queries = [QUERY_TO_TRY, *DEMO_QUERIES]
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```sql\n(.*?)```", text, re.S):
            queries += [s.query for s in parse.extract_statements(block)]
        queries += re.findall(r'vectorflow sql "([^"]*[A-Za-z][^"]*)"', text)
    from vectorflow.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    queries += re.findall(r'vectorflow sql "([^"]*[A-Za-z][^"]*)"', sub.choices["sql"].epilog)
    return list(dict.fromkeys(q.strip() for q in queries))


def test_every_documented_query_answers(lake_dir, monkeypatch, capsys):
    queries = documented_queries()
    assert len(queries) >= 15 and any("FROM signals" in q for q in queries)
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(lake_dir))
    answers = {}
    for query in queries:
        code = main(["sql", query, "--format", "csv"])
        out, err = capsys.readouterr()
        assert code == OK, (query, err)
        answers[query] = len(out.splitlines()) - 1
    assert answers[QUERY_TO_TRY] == 4  # the four series
    readme = next(q for q in queries if "FROM signals WHERE market = 'linear'" in q)
    assert answers[readme] == 5


def test_a_read_only_copy_reads_its_own_lake(lake_dir, tmp_path):
    # Regression: the copy's views read the original lake (absolute paths) and, the original
    # gone, "catalog is locked"
    copy = tmp_path / "copy"
    shutil.copytree(lake_dir, copy, symlinks=True)
    expected = _count(lake_dir)
    with read_only(copy) as wrapper:
        moved = lake_dir.with_name("moved-away")
        lake_dir.rename(moved)  # the original is gone while the copy is read
        try:
            assert _count(copy, wrapper) == expected
        finally:
            moved.rename(lake_dir)


def test_a_writable_copy_rebuilds_its_catalog_for_its_own_lake(lake_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(lake_dir, copy, symlinks=True)
    (gone,) = list((copy / "lake" / "candles").glob("exchange=bybit/market=spot/*/*"))
    shutil.rmtree(gone)  # the copy now differs from the original: one series fewer
    bybit_spot = "SELECT count(*) FROM candles WHERE exchange = 'bybit' AND market = 'spot'"
    ((removed,),) = query_catalog(lake_dir, bybit_spot)
    assert removed > 0 and _count(copy) == _count(lake_dir) - removed
    con = duckdb.connect(str(copy / "vectorflow.duckdb"), read_only=True)
    meta = dict(con.execute("FROM vectorflow_meta").fetchall())
    con.close()
    assert meta["data_dir"] == str(copy) and meta["lake"] == str(copy / "lake")


def test_a_garbage_catalog_is_quarantined_and_rebuilt(lake_dir, tmp_path):
    # Regression: a garbage vectorflow.duckdb was reported "locked" forever and never rebuilt
    copy = tmp_path / "copy"
    shutil.copytree(lake_dir, copy, symlinks=True)
    garbage = b"not a database" * 1000
    (copy / "vectorflow.duckdb").write_bytes(garbage)
    assert _count(copy) == _count(lake_dir)
    # set aside as the lake's files are: quarantine/<stamp>/<name>, a note beside it
    (kept,) = (copy / "quarantine").glob("*/vectorflow.duckdb")
    assert kept.read_bytes() == garbage  # moved aside, never deleted
    source, why = kept.with_name("vectorflow.duckdb.note.txt").read_text().splitlines()
    assert source == str(copy / "vectorflow.duckdb") and "a new catalog was built" in why
    duckdb.connect(str(copy / "vectorflow.duckdb"), read_only=True).close()  # a real catalog
