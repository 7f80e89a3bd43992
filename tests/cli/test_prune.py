"""`vectorflow prune` names what it deletes and asks: literal names, counts, --yes, --dry-run,
and the space of pruned rows freed at once."""

from __future__ import annotations

import os
import pty

import pytest

from tests.cli.test_bad_input import assert_one_clear_line
from tests.conftest import query_catalog, run_cli, sim_env, sim_settings
from vectorflow.errors import InvalidInput
from vectorflow.lake.compact import prune
from vectorflow.lake.files import version_number
from vectorflow.lake.schema import CANDLES
from vectorflow.pipelines.candles import ingest_series
from vectorflow.units import Unit

DAY = 86_400_000
PER_SERIES = "SELECT exchange, count(*) FROM candles GROUP BY ALL ORDER BY ALL"


@pytest.fixture
def two_series(sim, data_dir):
    """Ten days of hourly candles of BTC/USDT:USDT on both exchanges, in two snapshots each."""
    settings = sim_settings(sim, data_dir)
    now = sim.now_ms()
    for exchange in ("binance", "bybit"):
        unit = Unit(exchange, "linear", "BTC/USDT:USDT", "1h")
        ingest_series(unit, now - 10 * DAY, now - 5 * DAY, settings, clock=sim.now_ms)
        ingest_series(unit, now - 5 * DAY, now, settings, clock=sim.now_ms)
    return data_dir


def _snapshots(data_dir) -> dict[str, list[int]]:
    """Per candle partition, its snapshot directories' numbers."""
    return {
        folder.parent.parent.parent.name: sorted(
            n for n in map(version_number, os.listdir(folder)) if n is not None
        )
        for folder in (data_dir / "lake" / "candles").glob("*/*/*/*")
    }


def _before_counts(data_dir, cutoff_ms: int) -> dict[str, int]:
    rows = query_catalog(
        data_dir,
        f"SELECT exchange, count(*) FROM candles WHERE epoch_ms(open_time) < {cutoff_ms} "
        "GROUP BY ALL",
    )
    return dict(rows)


def test_glob_characters_are_refused_and_nothing_is_deleted(sim, two_series):
    # Regression: --exchange '*' --symbol '*' were spliced into a glob: every series deleted
    before = query_catalog(two_series, PER_SERIES)
    args = ["prune", "--dataset", "candles", "--all", "--exchange", "*", "--symbol", "*", "--yes"]
    assert_one_clear_line(run_cli(args, sim_env(sim, two_series), timeout=60), "'*'")
    settings = sim_settings(sim, two_series)
    with pytest.raises(InvalidInput, match="'b\\*' is not a literal name"):
        prune(settings, CANDLES, before=None, match={"exchange": "b*"})  # the library refuses too
    assert query_catalog(two_series, PER_SERIES) == before


def test_a_cut_after_every_row_names_each_series_and_needs_yes(sim, two_series):
    # Regression: --before 2099-01-01 deleted every row of every series with exit 0, naming none
    before = query_catalog(two_series, PER_SERIES)
    env = sim_env(sim, two_series)
    args = ["prune", "--dataset", "candles", "--before", "2099-01-01"]
    refused = run_cli(args, env, timeout=60)
    assert_one_clear_line(refused, "add --yes")
    assert f"{sum(n for _, n in before):,} rows of 2 series, 2 of them entirely" in refused.stderr
    for exchange, rows in before:  # the plan: each series, what would go, what would stay
        line = next(x for x in refused.stdout.splitlines() if f"exchange={exchange}/" in x)
        assert line.split()[-2:] == [str(rows), "0"]
    dry = run_cli([*args, "--dry-run"], env, timeout=60)
    assert dry.returncode == 0 and "dry run: nothing was deleted" in dry.stdout
    assert query_catalog(two_series, PER_SERIES) == before
    done = run_cli([*args, "--yes"], env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert query_catalog(two_series, PER_SERIES) == []


def test_part_of_one_series_goes_without_asking_and_exactly_as_shown(sim, two_series):
    cutoff = sim.now_ms() // DAY * DAY - 3 * DAY
    expected = _before_counts(two_series, cutoff)
    before = dict(query_catalog(two_series, PER_SERIES))
    args = ["prune", "--dataset", "candles", "--before", str(cutoff), "--exchange", "bybit"]
    done = run_cli(args, sim_env(sim, two_series), timeout=60)
    assert done.returncode == 0, done.stderr
    plan = next(x for x in done.stdout.splitlines() if "exchange=bybit/" in x).split()
    assert plan[-2:] == [str(expected["bybit"]), str(before["bybit"] - expected["bybit"])]
    after = dict(query_catalog(two_series, PER_SERIES))
    assert after == {"binance": before["binance"], "bybit": before["bybit"] - expected["bybit"]}


def test_a_terminal_is_asked_and_a_yes_deletes(sim, two_series):
    controller, terminal = pty.openpty()
    os.write(controller, b"y\n")
    args = ["prune", "--dataset", "candles", "--before", "2099-01-01"]
    try:
        done = run_cli(args, sim_env(sim, two_series), timeout=60, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 0, done.stderr
    assert "of 2 series, 2 of them entirely? [y/N]" in done.stdout
    assert query_catalog(two_series, PER_SERIES) == []


def test_a_pruned_series_frees_its_space_at_once(sim, two_series):
    # Regression: a pruned --all partition kept its old snapshots (and their bytes) until
    # some later write of that series, which may never come
    assert all(len(numbers) >= 2 for numbers in _snapshots(two_series).values())
    args = ["prune", "--dataset", "candles", "--all", "--exchange", "bybit", "--symbol",
            "BTC/USDT:USDT", "--yes"]  # fmt: skip
    done = run_cli(args, sim_env(sim, two_series), timeout=60)
    assert done.returncode == 0, done.stderr
    snapshots = _snapshots(two_series)
    assert len(snapshots["exchange=bybit"]) == 1  # only the current (empty) snapshot is left
    bybit = next((two_series / "lake" / "candles").glob("exchange=bybit/*/*/*"))
    assert not list(bybit.rglob("*.parquet"))
    assert query_catalog(two_series, PER_SERIES)[0][0] == "binance"
