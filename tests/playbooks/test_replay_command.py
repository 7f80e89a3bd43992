"""`vectorflow playbook --from --to`: the replay flow on a real Prefect API, from the CLI."""

from __future__ import annotations

import io
import re

import duckdb

from tests.conftest import run_cli, sim_env
from tests.playbooks.conftest import CANARY
from tests.playbooks.market_lake import AS_OF_NOW, DAY, HOUR, copy_data_dir
from vectorflow.playbooks.ticks import is_multiple
from vectorflow.timeframes import ms_to_iso

START = (AS_OF_NOW - 6 * DAY) // (4 * HOUR) * (4 * HOUR)
SERIES = ["--exchange", "binance", "--market", "linear", "--symbol", "BTC/USDT:USDT"]
REPLAY = [
    "playbook", *SERIES, "--timeframe", "1h", "--from", ms_to_iso(START),
    "--to", ms_to_iso(START + DAY), "--every", "4h",
]  # fmt: skip


def test_a_replay_prints_the_comparison_and_uses_the_markets_tick(
    prefect_api, sim, market, tmp_path
):
    data_dir = copy_data_dir(market[0], tmp_path / "data")
    done = run_cli(REPLAY, sim_env(sim, data_dir), prefect_api)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "1 series x 7 as_of times = 7 playbooks per source (rules)" in out
    unit = _unit_row(out)
    assert (unit["status"], unit["dataset"], unit["rows_written"]) == ("ok", "playbooks", "7")
    assert unit["resumed"] == "0" and unit["playbooks"] == "7 rules ok"
    assert "7 playbooks from" in out and "7 graded" in out
    assert "source  playbooks  directional" in out and "\nrules " in out
    con = duckdb.connect(str(data_dir / "vectorflow.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT tick_size, entry_low, entry_high, stop_loss, targets FROM playbooks "
        "WHERE run_id LIKE 'replay-%'"
    ).fetchall()
    con.close()
    assert len(rows) == 7
    for tick, *prices, targets in rows:
        assert tick == 0.1  # the simulator's exchangeInfo tick of the Binance perpetual
        prices += [t["price"] for t in targets]
        assert all(is_multiple(p, tick) for p in prices if p is not None)
    again = run_cli(REPLAY, sim_env(sim, data_dir), prefect_api)  # resumed: nothing new
    assert again.returncode == 0, again.stderr[-3000:]
    unit = _unit_row(again.stdout)
    assert (unit["status"], unit["rows_written"], unit["resumed"]) == ("ok", "0", "7")
    assert "7 playbooks from" in again.stdout and "7 graded" in again.stdout
    assert any("| rules | 7 |" in text for text in _artifacts("replay-playbooks"))


def _unit_row(out: str) -> dict[str, str]:
    """The one row of the command's unit table, by column (cut where the header's names start)."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("status "))
    header, row = lines[at], lines[at + 2]
    starts = [m.start() for m in re.finditer(r"\S+", header)] + [None]
    names = header.split()
    cuts = zip(names, starts[:-1], starts[1:], strict=True)
    return {name: row[a:b].strip() for name, a, b in cuts}


def _artifacts(key: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return [str(a.data) for a in found]


def test_a_grok_dry_run_prints_the_cost_and_sends_nothing(market, tmp_path):
    data_dir = copy_data_dir(market[0], tmp_path / "data")
    env = {"VECTORFLOW_DATA_DIR": str(data_dir), "XAI_BASE_URL": "http://127.0.0.1:9/v1"}
    done = run_cli([*REPLAY, "--source", "both", "--dry-run"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "playbooks per source (rules, grok)" in done.stdout
    assert "grok (grok-4.3): 7 requests to send (~" in done.stdout
    assert "0 answered from the cache" in done.stdout


def test_bad_replay_options_fail_with_one_line(market, tmp_path):
    env = {"VECTORFLOW_DATA_DIR": str(tmp_path)}
    bad = run_cli([*REPLAY, "--every", "3x"], env)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "error: --every: '3x' is not a step such as 1h, 4h or 1d"
    alone = run_cli(["playbook", *SERIES, "--timeframe", "1h", "--from", "2026-05-01"], env)
    assert alone.returncode == 2
    assert alone.stderr.strip() == "error: --from needs --to (the last as_of of the replay)"
    stray = run_cli(["playbook", *SERIES, "--timeframe", "1h", "--source", "grok"], env)
    assert stray.returncode == 2
    assert stray.stderr.strip() == "error: --source applies to a replay: give --from and --to"


def test_a_grok_replay_never_prompts_when_stdin_is_no_terminal(
    prefect_api, sim, llm, market, tmp_path, monkeypatch, capsys
):
    from vectorflow.cli import main

    data_dir = copy_data_dir(market[0], tmp_path / "data")
    for name, value in sim_env(sim, data_dir).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XAI_API_KEY", CANARY)
    monkeypatch.setenv("XAI_BASE_URL", llm.url)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # scripted: not a terminal
    two = [*REPLAY[:-4], "--to", ms_to_iso(START + 4 * HOUR), "--every", "4h", "--source", "grok"]
    assert main(two) == 0
    out = capsys.readouterr().out
    assert "grok (grok-4.3): 2 requests to send" in out and "send these requests?" not in out
    assert len(llm.chat_requests) == 2 and "\ngrok " in out
