"""The lake on S3 (`VECTORFLOW_LAKE_URL=s3://...`), against moto's S3 server on 127.0.0.1.

The same flows as on disk, reached over real sockets by pyarrow's S3 client: the rows must be
the same; a writer killed mid-upload or mid-commit must leave nothing visible; the state and
catalog stay in the local data dir.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from tests.conftest import SIM_NOW, query_catalog, run_cli, sim_env
from vectorflow.config import load_settings
from vectorflow.errors import InvalidInput
from vectorflow.lake import store
from vectorflow.lake.files import partition_dir
from vectorflow.lake.schema import CANDLES
from vectorflow.sim.s3 import LocalS3
from vectorflow.timeframes import ms_to_iso, parse_time

#: Differ between two runs of one backtest by design: when it ran, and its batch
RUN_STAMPS = ("run_at", "batch_id", "ingested_at")
HOUR = 3_600_000


def _bucket() -> str:
    return f"vf-{uuid.uuid4().hex[:12]}"


def _direct(s3: LocalS3) -> pafs.S3FileSystem:
    """A client of its own, not the project's."""
    return pafs.S3FileSystem(
        access_key=s3.aws_env["AWS_ACCESS_KEY_ID"], secret_key=s3.aws_env["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=s3.url.removeprefix("http://"), scheme="http", region="us-east-1",
    )  # fmt: skip


def _objects(s3: LocalS3, bucket: str) -> dict[str, int]:
    """Every object in the bucket (key -> size), listed directly, not through the project."""
    infos = _direct(s3).get_file_info(pafs.FileSelector(bucket, recursive=True))
    return {i.path: i.size for i in infos if i.type == pafs.FileType.File}


def _use(monkeypatch, env: dict[str, str]) -> None:
    for key in ("VECTORFLOW_LAKE_URL",):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def _ingest_and_nightly(data_dir, first_ms: int) -> dict:
    from flows.ingest import ingest_candles
    from flows.nightly import nightly

    (data_dir / "vectorflow.toml").write_text(
        "[backtest]\nleaders = 2\n"
        "[backtest.windows]\nin_sample_days = 10\nout_of_sample_days = 5\nmax_windows = 3\n"
    )
    since = ms_to_iso(first_ms)
    middle = ms_to_iso(first_ms + 20 * 24 * HOUR)
    for until in (middle, None):  # a first run, then an incremental one
        state = ingest_candles(exchanges=["binance"], markets=["spot"], symbols=["BTC/USDT"],
                               timeframes=["30m", "1h"], since=since, until=until,
                               return_state=True)  # fmt: skip
        assert state.is_completed(), state.message
    outcome = nightly(grid="small", data_dir=str(data_dir))
    assert isinstance(outcome, dict) and outcome["failed"] == [], outcome
    return outcome


def _rows(data_dir, view: str):
    frame = query_catalog(data_dir, f"FROM {view} ORDER BY ALL", frame=True)
    return frame.drop(columns=[c for c in RUN_STAMPS if c in frame]).reset_index(drop=True)


@pytest.mark.slow
def test_ingest_and_nightly_on_s3_land_the_same_rows_as_on_disk(
    prefect_api, sim, local_s3, tmp_path, monkeypatch
):
    first, _ = sim.bundled_range("30m")
    disk, s3 = tmp_path / "disk" / "data", tmp_path / "s3" / "data"
    disk.mkdir(parents=True)
    s3.mkdir(parents=True)

    _use(monkeypatch, sim_env(sim, disk))
    on_disk = _ingest_and_nightly(disk, first)

    bucket = _bucket()
    _use(monkeypatch, {**sim_env(sim, s3), **local_s3.lake_env(bucket)})
    on_s3 = _ingest_and_nightly(s3, first)

    assert not (s3 / "lake").exists()  # the lake is in the bucket; state and catalog stay here
    assert (s3 / "vectorflow.duckdb").exists() and (s3 / "state.db").exists()
    keys = _objects(local_s3, bucket)
    assert any("/candles/exchange=binance/" in k for k in keys)
    assert any("/backtest_runs/" in k for k in keys)
    assert not [k for k in keys if k.endswith(".tmp")]  # every commit finished its copy

    candles_s3 = _rows(s3, "candles")
    _use(monkeypatch, sim_env(sim, disk))
    candles_disk = _rows(disk, "candles")
    assert len(candles_disk) > 1000 and candles_s3.equals(candles_disk)
    assert [s["leaderboard"] for s in on_s3["series"]] == [
        s["leaderboard"] for s in on_disk["series"]
    ]
    runs_disk = _rows(disk, "backtest_runs").drop(columns=["run_id", "is_run_id"])
    _use(monkeypatch, {**sim_env(sim, s3), **local_s3.lake_env(bucket)})
    runs_s3 = _rows(s3, "backtest_runs").drop(columns=["run_id", "is_run_id"])
    assert len(runs_disk) > 0 and runs_s3.equals(runs_disk)


class StallingProxy:
    """A TCP proxy to S3 that stops forwarding, for good, the first request matching `pattern`
    `keep` bytes after the match: the request never completes, as when its writer is killed."""

    def __init__(self, upstream: str, pattern: bytes, keep: int) -> None:
        self.keep = keep
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.pattern = re.compile(pattern)
        self.stalled = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        seen = b""
        try:
            while chunk := source.recv(65536):
                if outbound and not self.stalled.is_set():
                    seen = (seen + chunk)[-4096:]
                    match = self.pattern.search(seen)
                    if match:
                        cut = len(chunk) - (len(seen) - match.start()) + self.keep
                        sink.sendall(chunk[: max(0, cut)])
                        self.stalled.set()
                        return  # the rest never reaches S3
                sink.sendall(chunk)
        except OSError:
            return

    def close(self) -> None:
        self.listener.close()


WRITER = textwrap.dedent(
    """
    import sys
    from vectorflow.units import Unit
    from vectorflow.pipelines.candles import ingest_series
    from vectorflow.config import load_settings
    settings = load_settings()
    unit = Unit("binance", "spot", "BTC/USDT", "1h")
    ingest_series(unit, int(sys.argv[1]), int(sys.argv[2]), settings)
    print("finished")
    """
)


@pytest.mark.parametrize(
    ("step", "pattern", "keep"),
    [  # the temp object's bytes, cut inside the upload; the server-side copy to the final name
        ("upload", rb"PUT /[^ ]*\.parquet\.tmp\?[^ ]*partNumber", 2000),
        ("commit", rb"(?i)x-amz-copy-source:", 0),
    ],
)
def test_a_writer_killed_mid_write_leaves_nothing_visible(
    sim, local_s3, tmp_path, monkeypatch, step, pattern, keep
):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    bucket = _bucket()
    env = {**sim_env(sim, data_dir), **local_s3.lake_env(bucket)}
    first, _ = sim.bundled_range("1h")
    until = parse_time(SIM_NOW)
    proxy = StallingProxy(local_s3.url, pattern, keep)
    try:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(first), str(until)],
            env={**_clean_env(), **env, "AWS_ENDPOINT_URL": proxy.url},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert proxy.stalled.wait(60), writer.communicate(timeout=5)[0]
        time.sleep(0.2)
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    finally:
        proxy.close()

    keys = _objects(local_s3, bucket)
    data = [k for k in keys if k.endswith(".parquet")]
    assert data == []  # the first data file never became visible
    temps = [k for k in keys if k.endswith(".parquet.tmp")]
    assert len(temps) == (1 if step == "commit" else 0)  # complete, but under a name no one reads
    _use(monkeypatch, env)
    assert query_catalog(data_dir, "SELECT count(*) FROM candles") == [(0,)]

    rerun = subprocess.run(
        [sys.executable, "-c", WRITER, str(first), str(until)],
        env={**_clean_env(), **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    expected = (until - first) // HOUR
    counts = query_catalog(data_dir, "SELECT count(*), count(DISTINCT open_time) FROM candles")
    assert counts == [(expected, expected)]
    fs = _direct(local_s3)
    data = [k for k in _objects(local_s3, bucket) if k.endswith(".parquet")]
    assert any("/candles/" in k for k in data)
    for key in data:  # every visible object is a whole Parquet file
        with fs.open_input_file(key) as handle:
            pq.read_metadata(handle)


TWIN = textwrap.dedent(
    """
    import pathlib, sys, time
    from vectorflow.units import Unit
    from vectorflow.pipelines.candles import ingest_series
    from vectorflow.config import load_settings
    settings = load_settings()
    settings.storage.fs  # connect first: both writers then start together
    go = pathlib.Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.01)
    unit = Unit("binance", "spot", "BTC/USDT", "1h")
    print(ingest_series(unit, int(sys.argv[1]), int(sys.argv[2]), settings).rows_written)
    """
)


@pytest.mark.slow
def test_two_hosts_sharing_state_write_one_series_one_at_a_time(sim, local_s3, tmp_path):
    """Each host its own data dir (lock files, state.db); the lake and a PostgreSQL database
    shared: the partition's advisory lock lets one writer in at a time, the other trims what
    the first landed, so the bucket holds no overlapping files (not only views without
    duplicates)."""
    from tests.ops.helpers import postgres_server

    bucket = _bucket()
    first, _ = sim.bundled_range("1h")
    until = parse_time(SIM_NOW)
    go = tmp_path / "go"
    with postgres_server("vectorflow") as url:
        shared = {**local_s3.lake_env(bucket),
                  "VECTORFLOW_SHARED_STATE_URL": url.replace("+asyncpg", "")}  # fmt: skip
        hosts = []
        for name in ("host-a", "host-b"):
            data_dir = tmp_path / name / "data"
            data_dir.mkdir(parents=True)
            env = {**_clean_env(), **sim_env(sim, data_dir), **shared}
            hosts.append(subprocess.Popen(
                [sys.executable, "-c", TWIN, str(first), str(until), str(go)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
        time.sleep(3)
        go.touch()
        outputs = [host.communicate(timeout=120) for host in hosts]
    assert all(h.returncode == 0 for h in hosts), outputs
    written = sorted(int(out.split()[-1]) for out, _ in outputs)
    expected = (until - first) // HOUR
    assert written == [0, expected]  # the second writer found everything landed

    fs = _direct(local_s3)
    files = sorted(k for k in _objects(local_s3, bucket) if "/candles/exchange=" in k
                   and k.endswith(".parquet"))  # fmt: skip
    times = []
    for key in files:
        with fs.open_input_file(key) as handle:
            times += pq.read_table(handle, columns=["open_time"]).column(0).to_pylist()
    assert len(times) == len(set(times)) == expected


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("VECTORFLOW_", "AWS_"))}


def test_views_show_each_key_once_while_a_merge_has_not_deleted_its_inputs(
    local_s3, tmp_path, monkeypatch
):
    """On S3 an output is visible before its inputs are deleted (no symlink to swap): the
    views keep one row per key, and readers of files leave the dominated inputs out."""
    import pyarrow as pa

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _use(monkeypatch, {"VECTORFLOW_DATA_DIR": str(data_dir), **local_s3.lake_env(_bucket())})
    lake = load_settings(data_dir).storage
    folder = partition_dir(lake.root, CANDLES, {"exchange": "binance", "market": "spot",
                                           "symbol_id": "BTCUSDT", "timeframe": "1h"})  # fmt: skip

    def table(hours, close, ingested):
        n = len(hours)
        row = {f.name: [None] * n for f in CANDLES.schema}
        row.update(exchange=["binance"] * n, market=["spot"] * n, symbol=["BTC/USDT"] * n,
                   timeframe=["1h"] * n, open_time=[h * HOUR for h in hours], open=[1.0] * n,
                   high=[1.0] * n, low=[1.0] * n, close=[close] * n, volume=[1.0] * n,
                   ingested_at=[ingested] * n)  # fmt: skip
        return pa.table(row, schema=CANDLES.schema)

    lake.write(table(range(0, 5), 1.0, 1), folder, 0, 4 * HOUR)
    lake.write(table(range(5, 10), 1.0, 1), folder, 5 * HOUR, 9 * HOUR)
    lake.write(table(range(0, 10), 2.0, 2), folder, 0, 9 * HOUR)  # their merge, inputs kept
    assert [(f.first_ms, f.last_ms) for f in lake.files(folder, CANDLES)] == [(0, 9 * HOUR)]
    rows = query_catalog(data_dir, "SELECT count(*), count(DISTINCT open_time), min(close) "
                                   "FROM candles")  # fmt: skip
    assert rows == [(10, 10, 2.0)]

    options = {"merge_rows": 50_000, "merge_files": 8, "grace_seconds": 0}
    store.append(lake, CANDLES, folder, table(range(8, 12), 3.0, 3), **options)  # trims 8, 9
    rows = query_catalog(data_dir, "SELECT count(*), count(DISTINCT open_time) FROM candles")
    assert rows == [(12, 12)]


def test_a_bad_lake_url_is_refused_naming_it(tmp_path):
    for url in ("s3://", "ftp://host/lake", "s3:// bad/lake"):
        with pytest.raises(InvalidInput, match=re.escape(url)):
            load_settings(tmp_path, env={"VECTORFLOW_LAKE_URL": url})
    result = run_cli(["status"], {"VECTORFLOW_DATA_DIR": str(tmp_path),
                                  "VECTORFLOW_LAKE_URL": "s3://"})  # fmt: skip
    assert result.returncode == 2 and "s3://" in result.stderr, result.stderr


@pytest.mark.slow
def test_market_data_and_compaction_on_s3_match_the_disk(prefect_api, sim, local_s3, tmp_path):
    """Order books, open interest and funding through the CLI, then `vectorflow compact`
    (which also applies the order books' 30-day retention: the simulator's snapshots are dated
    2026-06-01): the same rows as on disk, before and after compaction, and compacted objects
    in the bucket."""
    args = ["market-data", "--symbol", "BTC/USDT:USDT", "--period", "1h"]
    derivatives = ("SELECT 'oi', exchange, epoch_ms(time), open_interest FROM open_interest "
                   "UNION ALL SELECT 'funding', exchange, epoch_ms(funding_time), funding_rate "
                   "FROM funding_rates ORDER BY ALL")  # fmt: skip
    books = "SELECT exchange, market, count(*) FROM orderbook_levels GROUP BY ALL ORDER BY ALL"
    results = {}
    bucket = _bucket()
    for place in ("disk", "s3"):
        data_dir = tmp_path / place / "data"
        data_dir.mkdir(parents=True)
        env = sim_env(sim, data_dir)
        if place == "s3":
            env |= local_s3.lake_env(bucket)
        done = run_cli(args, env, prefect_api)
        assert done.returncode == 0, done.stderr[-3000:]
        assert [line[:3] for line in done.stdout.splitlines()].count("ok ") == 6
        before = run_cli(["sql", derivatives, "--format", "csv"], env)
        levels = run_cli(["sql", books, "--format", "csv"], env).stdout  # before the retention
        compacted = run_cli(["compact"], env, prefect_api)
        assert compacted.returncode == 0 and "compacted" in compacted.stdout, compacted.stderr
        after = run_cli(["sql", derivatives, "--format", "csv"], env)
        assert before.returncode == 0 and before.stdout == after.stdout, before.stderr
        assert len(before.stdout.splitlines()) > 2 * 29 * 24
        results[place] = (after.stdout, levels)
    assert results["s3"] == results["disk"]
    assert "binance,linear,200" in results["s3"][1]  # 100 levels a side
    status = run_cli(["status"], env)  # env: the S3 side's
    assert f"lake s3://{bucket}/lake" in status.stdout, status.stderr
    usage = re.search(r"^open_interest\s+(\d+)\s+(\d+)", status.stdout, re.MULTILINE)
    assert usage and int(usage[1]) >= 2 and int(usage[2]) >= 2  # files, compacted: from S3
    keys = _objects(local_s3, bucket)
    assert sum("/open_interest/" in k and k.endswith(".compact.parquet") for k in keys) >= 2
    assert not (tmp_path / "s3" / "data" / "lake").exists()


def test_duckdb_reads_of_one_object_from_many_threads_are_exact(local_s3, tmp_path, monkeypatch):
    """DuckDB reads a file's row groups from several threads through one file object; each read
    must land at its own offset (a shared cursor gave decompression errors and wrong sums)."""
    import numpy as np
    import pyarrow as pa

    bucket = _bucket()
    _use(monkeypatch, {"VECTORFLOW_DATA_DIR": str(tmp_path), **local_s3.lake_env(bucket)})
    lake = load_settings(tmp_path).storage
    n = 400_000
    table = pa.table({"t": np.arange(n, dtype=np.int64), "x": np.arange(n) % 1000.0})
    with lake.fs.open_output_stream(f"{bucket}/lake/f.parquet") as sink:
        pq.write_table(table, sink, compression="none", row_group_size=50_000)  # 8 row groups
    answers = []
    for _ in range(20):
        con = lake.connect()
        try:
            answers.append(con.execute(
                f"SELECT count(*), sum(t)::BIGINT, sum(x) FROM 's3://{bucket}/lake/f.parquet'"
            ).fetchone())  # fmt: skip
        finally:
            con.close()
    expected = (n, n * (n - 1) // 2, float(table.column("x").to_numpy().sum()))
    assert answers == [expected] * 20


def test_the_endpoint_comes_from_the_environment_the_settings_were_loaded_from(
    local_s3, tmp_path, monkeypatch
):
    """`load_settings(env=...)` with the lake and endpoint in `env`, not in os.environ: the
    lake is in that endpoint's bucket (never the default AWS one of the same name)."""
    import pyarrow as pa

    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "VECTORFLOW_LAKE_URL"):
        monkeypatch.delenv(key, raising=False)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # credentials: the process's
        monkeypatch.setenv(key, local_s3.aws_env[key])
    bucket = _bucket()
    settings = load_settings(tmp_path, env=local_s3.lake_env(bucket))
    folder = settings.storage.root / "probe"
    settings.storage.write(pa.table({"t": [1]}), folder, 0, 0)
    assert [k for k in _objects(local_s3, bucket) if "/probe/" in k and k.endswith(".parquet")]
