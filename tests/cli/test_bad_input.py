"""Every bad input of issue 21: one line naming the value, exit 2, no traceback, nothing written.

Each row runs the real command line in its own process (as a user would) before anything is
started: no Prefect run, no simulator, no request.
"""

from __future__ import annotations

import socket

import pytest

from tests.cli.read_only import read_only
from tests.conftest import run_cli

PLAYBOOK = ["playbook", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h"]
INGEST = ["ingest", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h"]

# Regression: each of these ended in a traceback, or was accepted and did something wrong
# (args, what stderr must name)
BAD_INPUT = {
    "sql-empty": (["sql", ""], "no SQL statement in ''"),
    "sql-blank": (["sql", "   "], "no SQL statement in '   '"),
    "sql-comment": (["sql", "-- x"], "no SQL statement in '-- x'"),
    "since-huge": ([*INGEST, "--since", "99999999999999999999"], "'99999999999999999999'"),
    "since-year-999": ([*INGEST, "--since", "0999-01-01"], "'0999-01-01'"),
    "backfill-year-500": (["backfill", "--symbol", "BTC/USDT", "--since", "0500-01-01"],
                          "'0500-01-01'"),
    "concurrency-negative": ([*PLAYBOOK, "--concurrency", "-3"], "'-3' must be at least 1"),
    "concurrency-zero": ([*PLAYBOOK, "--concurrency", "0"], "'0' must be at least 1"),
    "sim-port-negative": (["sim", "--port", "-1"], "'-1' must be at least 0"),
    "sim-port-too-big": (["sim", "--port", "99999"], "'99999' must be at most 65535"),
    "llm-sim-port-negative": (["llm-sim", "--port", "-1"], "'-1' must be at least 0"),
    "llm-sim-latency-negative": (["llm-sim", "--latency", "-1"], "'-1' must be at least 0"),
    "demo-port-too-big": (["demo", "--port", "99999"], "'99999' must be at most 65535"),
    "sim-fault-not-a-number": (["sim", "--fault", "rate_limit:after=x"], "after 'x'"),
    "sim-time-scale-zero": (["sim", "--time-scale", "0"], "'0' must be greater than 0"),
    "sim-time-scale-negative": (["sim", "--time-scale", "-1"], "'-1' must be greater than 0"),
    "levels-zero": (["market-data", "--levels", "0"], "'0' must be at least 1"),
    "budget-negative": ([*PLAYBOOK, "--budget", "-5"], "'-5' must be at least 1"),
    "grace-negative": (["status", "--grace-minutes", "-5"], "'-5' must be at least 0"),
    "grace-nan": (["status", "--grace-minutes", "nan"], "'nan' is not a finite number"),
    "tpo-row-size-nan": (["signals", "--exchange", "binance", "--market", "spot", "--symbol",
                          "BTC/USDT", "--timeframe", "1h", "--tpo-row-size", "nan"],
                         "'nan' is not a finite number"),
    "capture-seconds-zero": (["capture-orderbook", "--exchange", "binance", "--market", "spot",
                              "--symbol", "BTC/USDT", "--seconds", "0"],
                             "'0' must be greater than 0"),
    "capture-depth-zero": (["capture-orderbook", "--exchange", "binance", "--market", "spot",
                            "--symbol", "BTC/USDT", "--seconds", "5", "--depth", "0"],
                           "'0' must be at least 1"),
    "transitions-negative": (["status", "--transitions", "-1"], "'-1' must be at least 0"),
    "horizon-zero": (["grade", "--horizon", "0"], "'0' must be at least 1"),
    "horizon-negative": (["grade", "--horizon", "-1"], "'-1' must be at least 1"),
    "as-of-future": ([*PLAYBOOK, "--as-of", "2030-01-01"], "'2030-01-01' is in the future"),
    "unknown-symbol": (["playbook", "--exchange", "binance", "--symbol", "NOPE/USDT",
                        "--timeframe", "1h"], "no candles stored for binance spot NOPE/USDT 1h"),
    "prune-glob": (["prune", "--dataset", "candles", "--all", "--exchange", "*", "--symbol", "*"],
                   "'*' is not a literal name"),
    "prune-glob-series": (["prune", "--dataset", "candles", "--before", "2026-01-01",
                           "--series", "1?"], "'1?' is not a literal name"),
}  # fmt: skip


def assert_one_clear_line(done, named: str) -> None:
    """Exit 2, and stderr's only error line names the value; no traceback."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and named in errors[0], done.stderr[-2000:]


@pytest.mark.parametrize("args,named", BAD_INPUT.values(), ids=BAD_INPUT)
def test_bad_input_is_one_line_naming_the_value(args, named, data_dir):
    done = run_cli(args, {"VECTORFLOW_DATA_DIR": str(data_dir)}, timeout=60)
    assert_one_clear_line(done, named)
    assert list(data_dir.iterdir()) == []  # nothing written: no lake, no snapshot, no catalog


@pytest.mark.parametrize("command", ["sim", "llm-sim", "demo"])
def test_a_port_in_use_is_named(command, data_dir):
    # Regression: a port in use ended in a traceback (OSError: Address already in use)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli([command, "--port", str(port)], {"VECTORFLOW_DATA_DIR": str(data_dir)},
                       timeout=60)  # fmt: skip
    assert_one_clear_line(done, f"port {port} on 127.0.0.1 is in use")


@pytest.mark.parametrize("args", [["ingest", "--symbol", "BTC/USDT"], ["sql", "SELECT 1"]],
                         ids=["ingest", "sql"])  # fmt: skip
def test_a_data_dir_that_is_a_file_is_named(args, tmp_path):
    # Regression: a data dir that is a file ended in NotADirectoryError deep in the lake
    afile = tmp_path / "data"
    afile.write_text("not a folder")
    done = run_cli(args, {"VECTORFLOW_DATA_DIR": str(afile)}, timeout=60)
    assert_one_clear_line(done, f"data dir {afile} is a file")
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize(
    "args",
    [
        [*INGEST, "--since", "2026-01-01"],
        ["status"],
        PLAYBOOK,
        ["compact"],
    ],
    ids=["ingest", "status", "playbook", "compact"],
)
def test_a_read_only_data_dir_is_named(args, data_dir):
    # Regression: a read-only data dir ended in tracebacks (OSError: Read-only file system)
    with read_only(data_dir) as wrapper:
        done = run_cli(args, {"VECTORFLOW_DATA_DIR": str(data_dir)}, timeout=60, wrapper=wrapper)
    assert_one_clear_line(done, f"data dir {data_dir} is read-only")


def test_an_unexpected_error_is_one_line_unless_debugging(data_dir, monkeypatch, capsys):
    from vectorflow.cli import commands, main

    def broken(*args, **kwargs):
        raise RuntimeError("something nobody checked\nover two lines")

    monkeypatch.setattr(commands, "_print_query", broken)  # a bug, wherever it may be
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(data_dir))
    monkeypatch.delenv("VECTORFLOW_DEBUG", raising=False)
    assert main(["sql", "SELECT 1"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: RuntimeError: something nobody checked over two lines "
        "(run with VECTORFLOW_DEBUG=1 for the traceback)"
    ]
    monkeypatch.setenv("VECTORFLOW_DEBUG", "1")
    with pytest.raises(RuntimeError, match="something nobody checked"):
        main(["sql", "SELECT 1"])
