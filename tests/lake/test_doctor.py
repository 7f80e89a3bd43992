"""Files that lie about what they hold, and `vectorflow doctor`: detected, set aside, refetched.

A real lake landed from the simulator, damaged by hand as a careless user or a bad disk would,
then the commands a user runs: `vectorflow sql`, `vectorflow doctor [--repair]`, an ingest
with `--since`. Nothing is ever deleted: what is set aside is in `<data dir>/quarantine/`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import run_cli, sim_env, sim_settings
from tests.lake.helpers import candle_rows, candles
from vectorflow.config import load_settings
from vectorflow.lake.doctor import check_lake, repair_lake
from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import CANDLES
from vectorflow.pipelines.candles import ingest_series
from vectorflow.units import Unit

HOUR = 3_600_000
UNIT = Unit("binance", "spot", "BTC/USDT", "1h")
FOLDER = "lake/candles/exchange=binance/market=spot/symbol_id=BTCUSDT/timeframe=1h"


def _land(sim, data_dir: Path, hours: int = 100) -> int:
    first, _ = sim.bundled_range("1h")
    report = ingest_series(UNIT, first, first + hours * HOUR, sim_settings(sim, data_dir),
                           clock=sim.now_ms)  # fmt: skip
    assert report.rows_written == hours
    return first


@pytest.fixture
def expected(sim, tmp_path) -> list[tuple]:
    clean = tmp_path / "clean"
    clean.mkdir()
    _land(sim, clean)
    return candle_rows(clean)


def _the_file(data_dir: Path) -> Path:
    (path,) = (data_dir / FOLDER / "current").glob("*.parquet")
    return path


def _replace(path: Path, table: pa.Table) -> None:
    """What an outside writer does: a whole new file under the lake file's name."""
    tmp = path.with_name("replacement.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _doctor(sim, data_dir: Path, *args: str):
    return run_cli(["doctor", *args], sim_env(sim, data_dir))


def _quarantined(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "quarantine").rglob("*") if p.is_file())


def test_a_shorter_valid_file_replacing_a_lake_file_is_detected_and_refetched(
    sim, data_dir, expected
):
    # Regression: a lake file replaced by a valid shorter one left a gap nothing filled:
    # `ingest --since` reported ok, 0 rows, 0 requests because planning trusted file names
    first = _land(sim, data_dir)
    path = _the_file(data_dir)
    _replace(path, pq.read_table(path).slice(0, 40))
    assert len(candle_rows(data_dir)) == 40
    found = _doctor(sim, data_dir)
    assert found.returncode == 4, found.stdout + found.stderr
    assert path.name in found.stdout and "40 rows where its snapshot recorded 100" in found.stdout
    report = ingest_series(UNIT, first, first + 100 * HOUR, sim_settings(sim, data_dir),
                           clock=sim.now_ms)  # fmt: skip
    assert report.rows_written == 60 and report.requests >= 1
    assert candle_rows(data_dir) == expected
    assert path.name in _quarantined(data_dir)  # the file it found, kept aside
    assert _doctor(sim, data_dir).returncode == 0


def test_a_file_of_a_foreign_schema_is_quarantined_not_read_and_its_range_refetched(
    sim, data_dir, expected
):
    # Regression: a file with a foreign schema added an all-NULL row without an error
    first = _land(sim, data_dir)
    path = _the_file(data_dir)
    _replace(path, pa.table({"x": [1]}))
    found = _doctor(sim, data_dir, "--format", "csv")
    assert found.returncode == 4 and "a foreign schema" in found.stdout, found.stdout
    repaired = _doctor(sim, data_dir, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert [path.name, path.name + ".note.txt"] == _quarantined(data_dir)
    assert candle_rows(data_dir) == []  # set aside: not a row of it read, no NULL row
    ingest_series(UNIT, first, first + 100 * HOUR, sim_settings(sim, data_dir), clock=sim.now_ms)
    assert candle_rows(data_dir) == expected


def test_a_garbage_file_put_in_a_partition_folder_is_never_read_and_is_quarantined(
    sim, data_dir, expected
):
    # Regression: a garbage loose file was adopted into the snapshot by `vectorflow sql`,
    # after which every candles query failed
    _land(sim, data_dir)
    loose = data_dir / FOLDER / "20260101T000000000_20260102T000000000_deadbeef.parquet"
    loose.write_bytes(b"not a parquet file")
    env = sim_env(sim, data_dir)
    for _ in range(2):  # the first refreshes the catalog, the second reads what it left
        answer = run_cli(["sql", "SELECT count(*) AS n FROM candles", "--format", "csv"], env)
        assert answer.returncode == 0 and answer.stdout.split() == ["n", "100"], answer.stderr
    found = _doctor(sim, data_dir)
    assert found.returncode == 4 and str(loose) in found.stdout, found.stdout
    assert _doctor(sim, data_dir, "--repair").returncode == 0
    assert not loose.exists() and loose.name in _quarantined(data_dir)
    assert candle_rows(data_dir) == expected


def test_doctor_names_a_dangling_current_and_repairs_it_only_when_asked(sim, data_dir, expected):
    # Regression: a dangling `current` read as 0 rows, with no error
    _land(sim, data_dir)
    current = data_dir / FOLDER / "current"
    os.unlink(current)
    os.symlink("v00000099", current)
    found = _doctor(sim, data_dir)
    assert found.returncode == 4 and f"{current}" in found.stdout and "dangling" in found.stdout
    planned = _doctor(sim, data_dir, "--repair", "--dry-run")
    assert planned.returncode == 4 and "would be repaired" in planned.stdout
    assert os.readlink(current) == "v00000099"  # a dry run changes nothing
    repaired = _doctor(sim, data_dir, "--repair")
    assert repaired.returncode == 0 and "v00000001" in repaired.stdout, repaired.stdout
    assert os.readlink(current) == "v00000001"
    assert candle_rows(data_dir) == expected
    assert _quarantined(data_dir) == []  # nothing needed setting aside


def test_doctor_on_a_sound_lake_says_so_and_refuses_an_unknown_dataset(sim, data_dir):
    _land(sim, data_dir, hours=10)
    sound = _doctor(sim, data_dir)
    assert sound.returncode == 0 and "nothing wrong" in sound.stdout, sound.stdout + sound.stderr
    bad = _doctor(sim, data_dir, "--dataset", "nope")
    assert bad.returncode == 2 and "--dataset nope" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_doctor_on_s3_sets_aside_a_foreign_object_and_keeps_the_rest(
    local_s3, tmp_path, monkeypatch
):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # credentials: the process's
        monkeypatch.setenv(key, local_s3.aws_env[key])
    lake = load_settings(tmp_path, env=local_s3.lake_env(f"vf-{uuid.uuid4().hex[:12]}")).storage
    values = {"exchange": "binance", "market": "spot", "symbol_id": "BTCUSDT", "timeframe": "1h"}
    folder = partition_dir(lake.root, CANDLES, values)
    lake.write(candles(range(0, 5), 1.0, 1), folder, 0, 4 * HOUR)
    foreign = lake.write(pa.table({"x": [1]}), folder, 10 * HOUR, 12 * HOUR)
    (problem,) = check_lake(lake, ["candles"])
    assert problem.path == str(foreign) and "a foreign schema" in problem.what
    repair_lake(lake, 0.0, ["candles"])
    assert check_lake(lake, ["candles"]) == []
    assert [(f.first_ms, f.last_ms) for f in lake.files(folder, CANDLES)] == [(0, 4 * HOUR)]
    (note,) = (tmp_path / "quarantine").rglob("*.note.txt")
    assert str(foreign) in note.read_text() and "a foreign schema" in note.read_text()
    assert pq.read_table(note.with_name(foreign.name)).column_names == ["x"]  # kept, readable
