"""A damaged state.db: every command that uses it names it in one line, and repair_state moves it
into quarantine (never deletes it) and starts an empty one."""

from __future__ import annotations

import sqlite3

import pytest

from tests.conftest import run_cli, sim_env
from vectorflow.config import load_settings
from vectorflow.errors import CorruptState
from vectorflow.resilience.guard import Guard, guard_for
from vectorflow.resilience.repair import check_state, repair_state

GARBAGE = b"<html>not a database</html>\n" * 200


def _damaged(data_dir, how: str):
    """A state.db that holds a real open breaker, then damaged as `how` says."""
    settings = load_settings(data_dir, env={})
    breakers = Guard(settings).breakers
    for _ in range(settings.resilience.breaker_failures):
        breakers.failure("fetch_candles", "binance", "ExchangeUnavailable: 503")
    con = sqlite3.connect(settings.state_path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file
    con.close()
    path = settings.state_path
    data = path.read_bytes()
    if how == "garbage":
        path.write_bytes(GARBAGE)
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # a page of the breakers table overwritten
        page = 4096
        path.write_bytes(data[: 2 * page] + b"\xff" * page + data[3 * page :])
    return settings


@pytest.mark.parametrize("how", ["garbage", "truncated", "overwritten page"])
def test_repair_moves_a_damaged_state_into_quarantine_and_starts_empty(data_dir, how):
    settings = _damaged(data_dir, how)
    damaged = settings.state_path.read_bytes()
    with pytest.raises(CorruptState, match=f"{settings.state_path} is corrupt .*doctor --repair"):
        check_state(settings.state_path)

    moved = repair_state(settings.state_path)

    assert moved.parent == data_dir / "quarantine" and moved.read_bytes() == damaged
    note = moved.with_name(moved.name + ".txt").read_text()
    assert str(settings.state_path) in note and "breakers" in note
    check_state(settings.state_path)  # the new file is sound...
    assert guard_for(settings).breakers.states() == []  # ...and empty
    assert repair_state(settings.state_path) is None  # a sound file is left alone


def test_a_sound_state_is_never_moved(data_dir):
    settings = load_settings(data_dir, env={})
    Guard(settings).breakers.failure("fetch_candles", "bybit", "timeout")
    before = settings.state_path.read_bytes()
    assert repair_state(settings.state_path) is None
    assert settings.state_path.read_bytes() == before
    assert not (data_dir / "quarantine").exists()
    assert repair_state(data_dir / "absent.db") is None


def test_the_library_names_the_damaged_file_where_it_reads_it(data_dir):
    settings = _damaged(data_dir, "garbage")
    with pytest.raises(CorruptState, match=str(settings.state_path)):
        Guard(settings).breakers.states()


@pytest.mark.parametrize("command", [["status"], ["ingest", "--symbol", "BTC/USDT"]])
def test_a_command_on_a_damaged_state_fails_with_one_line_naming_it(sim, data_dir, command):
    # Regression: a corrupt state.db ended every command in a sqlite3.DatabaseError traceback
    settings = _damaged(data_dir, "garbage")
    done = run_cli(command, sim_env(sim, data_dir))
    assert done.returncode == 4, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        f"error: {settings.state_path} is corrupt (file is not a database); run `vectorflow "
        f"doctor --repair` to move it into {data_dir / 'quarantine'} and start with empty "
        "rate-limit and breaker state"
    )
    repair_state(settings.state_path)
    assert run_cli(["status"], sim_env(sim, data_dir)).returncode in (0, 3)  # healthy or stale
