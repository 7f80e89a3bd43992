"""Signals that stay true: bars recomputed when their inputs, options or history change."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.conftest import sim_env, sim_settings
from tests.pipelines.lineage_helpers import fresh, same_rows, stored
from vectorflow.lake.catalog import read_view
from vectorflow.pipelines.candles import ingest_job, ingest_series, plan_ingest
from vectorflow.pipelines.lineage import ms_column
from vectorflow.pipelines.market_data import market_data_job, plan_market_data
from vectorflow.pipelines.run import ThreadExecutor
from vectorflow.pipelines.signals import update_signals
from vectorflow.playbooks.history import load_inputs
from vectorflow.playbooks.prompt import build_payload
from vectorflow.timeframes import ms_to_iso
from vectorflow.units import Unit

HOUR, DAY = 3_600_000, 86_400_000
PERP = Unit("binance", "linear", "BTC/USDT:USDT", "1h")


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as objects, nulls as None: a label column reads as str beside labels, else object."""
    return frame.astype(object).where(frame.notna(), None)


def _fresh_at(times: np.ndarray, queries: np.ndarray, max_age: np.ndarray | int) -> np.ndarray:
    """True where an observation lies in [query - max_age, query]."""
    i = np.searchsorted(times, queries, side="right") - 1
    return (i >= 0) & (queries - times[np.maximum(i, 0)] <= np.asarray(max_age))


def test_open_interest_landing_after_the_candles_fills_those_bars_and_only_those(
    sim, data_dir, tmp_path
):
    settings = sim_settings(sim, data_dir)
    first, _ = sim.bundled_range("5m")
    candles = plan_ingest(["binance"], ["linear"], ["BTC/USDT:USDT"], ["1h"], since=first)
    ingest_job(settings, candles, ThreadExecutor(1))
    before = stored(settings, PERP)
    assert len(before) > 900 and before["oi_change"].isna().all()

    derivatives = plan_market_data(["binance"], ["linear"], ["BTC/USDT:USDT"],
                                   ["open_interest", "funding_rates"], period="1h")  # fmt: skip
    results = market_data_job(settings, derivatives, ThreadExecutor(1))  # refreshes the signals
    after = stored(settings, PERP)
    oi = np.sort(ms_column(read_view(settings.storage, "open_interest"), "time"))
    funding = read_view(settings.storage, "funding_rates").sort_values("funding_time")
    as_of = ms_column(after, "as_of")
    covered = as_of >= min(oi[0], ms_column(funding, "funding_time")[0])
    assert [r.detail["signal_rows"] for r in results] == [covered.sum()] * 2
    # the bars before any observation are the rows stored before, not written again
    pd.testing.assert_frame_equal(_plain(after[~covered]), _plain(before[~covered]))
    assert (after.loc[covered, "ingested_at"] > before["ingested_at"].max()).all()
    # every bar whose close (and previous close) has OI within max(2 bars, 2 h) has the family
    has_oi = _fresh_at(oi, as_of, 2 * HOUR) & _fresh_at(oi, as_of - HOUR, 2 * HOUR)
    warm = np.searchsorted(oi, as_of, "right") - np.searchsorted(oi, as_of - 30 * DAY, "right")
    assert has_oi.sum() > 600
    assert after.loc[has_oi, ["oi_change", "oi_quadrant"]].notna().all().all()
    assert after.loc[has_oi & (warm >= 24), "oi_zscore"].notna().all()
    f_times, hours = ms_column(funding, "funding_time"), funding["interval_hours"].to_numpy()
    has_funding = _fresh_at(f_times, as_of, (2 * hours * HOUR)[
        np.maximum(np.searchsorted(f_times, as_of, "right") - 1, 0)])
    assert has_funding.sum() > 600 and after.loc[has_funding, "funding_annualized"].notna().all()
    same_rows(after, fresh(sim, settings, PERP, tmp_path / "fresh")[0])
    assert update_signals(PERP, settings).rows_written == 0  # nothing stale any more

    payload = build_payload(load_inputs(settings.storage, PERP, now_ms=sim.now_ms()))
    assert {"oi_quadrant", "oi_change", "funding_annualized"} <= set(payload["derivatives"])
    assert payload["inputs"]["signals"] == "stored"
    assert payload["inputs"]["open_interest_through"] == ms_to_iso(int(oi[-1]))


def test_a_backfill_of_older_candles_recomputes_from_the_new_first_candle(
    sim, data_dir, tmp_path
):
    settings = sim_settings(sim, data_dir)
    unit = Unit("bybit", "spot", "BTC/USDT", "1h")
    first, _ = sim.bundled_range("5m")
    ingest_series(unit, first + 15 * DAY, sim.now_ms(), settings, clock=sim.now_ms)
    update_signals(unit, settings)
    before = stored(settings, unit)
    backfill = ingest_series(unit, first, sim.now_ms(), settings, clock=sim.now_ms)
    report = update_signals(unit, settings)
    after = stored(settings, unit)
    assert report.detail["stale_reason"] == "history_changed"
    assert report.first == ms_to_iso(int(ms_column(after, "as_of")[0]))
    assert len(after) == len(before) + backfill.rows_written
    common = after.merge(before, on="as_of", suffixes=("", "_before"))
    assert len(common) == len(before)
    assert (common["adx"] != common["adx_before"]).any()  # Wilder runs from the new first candle
    relabelled = (common["regime_before"] == "insufficient_data") & (
        common["regime"] != "insufficient_data")
    assert relabelled.sum() > 100  # the bars a short history could not label yet
    rows, events = fresh(sim, settings, unit, tmp_path / "fresh")
    same_rows(after, rows)
    same_rows(stored(settings, unit, "trap_events"), events)


def test_a_changed_tpo_row_size_setting_recomputes_as_a_lake_with_it_from_the_start(
    sim, data_dir, tmp_path
):
    unit = Unit("bybit", "spot", "BTC/USDT", "30m")  # its own candles serve for TPO
    settings = sim_settings(sim, data_dir)
    first, _ = sim.bundled_range("5m")
    ingest_series(unit, first, first + 12 * DAY, settings, clock=sim.now_ms)
    update_signals(unit, settings)
    before = stored(settings, unit)
    toml = '[tpo_row_sizes]\n"BTC/USDT" = 25.0\n'
    (data_dir / "vectorflow.toml").write_text(toml)
    settings = sim_settings(sim, data_dir)
    report = update_signals(unit, settings)
    after = stored(settings, unit)
    assert report.detail["stale_reason"] == "options_changed"
    assert report.rows_written == report.detail["rows_replaced"] == len(before)
    assert set(after["tpo_row_size"].dropna()) == {25.0} != set(before["tpo_row_size"].dropna())
    assert (after["tpo_poc"] != before["tpo_poc"]).any()
    rows, events = fresh(sim, settings, unit, tmp_path / "fresh", toml)
    same_rows(after, rows)
    same_rows(stored(settings, unit, "trap_events"), events)


def test_the_tpo_row_size_option_and_recompute_on_a_stored_series(
    sim, data_dir, monkeypatch, capsys
):
    from vectorflow.cli import INVALID, OK, main

    for key, value in sim_env(sim, data_dir).items():
        monkeypatch.setenv(key, value)
    first, _ = sim.bundled_range("5m")
    series = ["--exchange", "bybit", "--market", "spot", "--symbol", "BTC/USDT"]
    assert main(["ingest", *series, "--timeframe", "30m", "--since", ms_to_iso(first)]) == OK
    settings = sim_settings(sim, data_dir)
    unit = Unit("bybit", "spot", "BTC/USDT", "30m")
    before = stored(settings, unit)
    capsys.readouterr()

    args = ["signals", *series, "--timeframe", "30m"]
    since = ms_to_iso(sim.now_ms() - 2 * DAY)
    assert main([*args, "--since", since]) == INVALID  # --since belongs to --recompute
    assert main([*args, "--recompute", "--since", since]) == OK
    kept = ms_column(before, "as_of") < sim.now_ms() - 2 * DAY
    assert f"recomputed {(~kept).sum():,} bars from " in capsys.readouterr().out
    again = stored(settings, unit)
    pd.testing.assert_frame_equal(again[kept], before[kept])  # the earlier rows: left as they were

    assert main([*args, "--tpo-row-size", "10"]) == OK
    out = capsys.readouterr().out
    said = 'options {"tpo_row_size":10.0} differ from the stored rows\' {"tpo_row_size":null}'
    assert said in out
    assert f"recomputed {len(before):,} bars" in out and "(row size 10.00)" in out
    assert "note: [tpo_row_sizes] gives BTC/USDT the default row size" in out
    assert set(stored(settings, unit)["tpo_row_size"].dropna()) == {10.0}
    assert main([*args, "--tpo-row-size", "10"]) == OK
    assert "recomputed" not in capsys.readouterr().out  # nothing stale: nothing rewritten


def test_status_and_the_coverage_view_say_how_far_signals_are_current(
    sim, data_dir, monkeypatch, capsys
):
    from tests.conftest import query_catalog
    from vectorflow.cli import main
    from vectorflow.cli.status import STALE
    from vectorflow.pipelines.market_data import ingest_market_unit

    settings = sim_settings(sim, data_dir)
    first, _ = sim.bundled_range("5m")
    ingest_series(PERP, first, sim.now_ms(), settings, clock=sim.now_ms)
    update_signals(PERP, settings)
    oi = Unit("binance", "linear", "BTC/USDT:USDT", "1h", "open_interest")
    ingest_market_unit(oi, None, sim.now_ms(), settings)  # landed without refreshing signals
    (first_oi,) = query_catalog(data_dir, "SELECT epoch_ms(min(time)) FROM open_interest")[0]
    (row,) = query_catalog(data_dir, "SELECT stale_reason, epoch_ms(stale_from), "
                           "epoch_ms(current_through), rows FROM coverage "
                           "WHERE dataset = 'signals'")  # fmt: skip
    assert row == ("missing_oi", first_oi, first_oi - HOUR, len(stored(settings, PERP)))

    for key, value in sim_env(sim, data_dir).items():
        monkeypatch.setenv(key, value)
    assert main(["status", "--now", ms_to_iso(sim.now_ms())]) == STALE
    out = capsys.readouterr().out
    stale = f"signals of binance linear BTC/USDT:USDT 1h are stale from {ms_to_iso(first_oi)}"
    assert f"{stale} (missing_oi)" in out
    # options chosen in the settings since: stale from the first bar, which the view cannot know
    (data_dir / "vectorflow.toml").write_text('[tpo_row_sizes]\n"BTC/USDT:USDT" = 10\n')
    assert main(["status", "--now", ms_to_iso(sim.now_ms())]) == STALE
    first_bar = int(ms_column(stored(settings, PERP), "as_of")[0])
    assert f"are stale from {ms_to_iso(first_bar)} (options_changed)" in capsys.readouterr().out
    (data_dir / "vectorflow.toml").unlink()
    update_signals(PERP, settings)
    (row,) = query_catalog(data_dir, "SELECT stale_reason, epoch_ms(current_through) "
                                     "FROM coverage WHERE dataset = 'signals'")  # fmt: skip
    assert row == (None, int(ms_column(stored(settings, PERP), "as_of")[-1]))


QUIET = """
import sys
from vectorflow.pipelines.signals import update_signals
from vectorflow.config import load_settings
from vectorflow.units import Unit
report = update_signals(Unit(*sys.argv[2:]), load_settings(sys.argv[1], env={}))
print(f"{report.rows_written} rows, numba imported: {'numba' in sys.modules}")
"""


def _quiet_run_in_a_process(data_dir, unit: Unit) -> str:
    """What a run in a fresh process writes, and whether it loaded the signal code (numba)."""
    import subprocess
    import sys

    args = [str(data_dir), unit.exchange, unit.market, unit.symbol, unit.timeframe]
    done = subprocess.run([sys.executable, "-c", QUIET, *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_signals_of_pruned_candles_go_with_them_and_a_quiet_run_writes_nothing(sim, data_dir):
    from vectorflow.lake.compact import prune
    from vectorflow.lake.schema import CANDLES, SIGNALS
    from vectorflow.pipelines.signals import series_folders

    settings = sim_settings(sim, data_dir)
    unit = Unit("bybit", "spot", "BTC/USDT", "4h")
    first, _ = sim.bundled_range("5m")
    ingest_series(unit, first, sim.now_ms(), settings, clock=sim.now_ms)
    assert update_signals(unit, settings).rows_written > 200
    folder = series_folders(settings.storage, unit)[0]
    files = settings.storage.files(folder, SIGNALS)
    quiet = update_signals(unit, settings)
    assert (quiet.rows_written, quiet.detail["events_written"]) == (0, 0)
    assert settings.storage.files(folder, SIGNALS) == files  # no new snapshot, no new file
    assert _quiet_run_in_a_process(data_dir, unit) == "0 rows, numba imported: False"
    cut = int(ms_column(stored(settings, unit), "as_of")[100]) - 4 * HOUR  # the 101st bar's open
    prune(settings, CANDLES, before=cut, match={"exchange": "bybit", "market": "spot",
                                                "symbol_id": "BTCUSDT", "timeframe": "4h"})
    report = update_signals(unit, settings)
    assert report.detail["stale_reason"] == "history_changed"
    after = stored(settings, unit)
    assert ms_column(after, "as_of")[0] == cut + 4 * HOUR  # Wilder from the new first candle
    prune(settings, CANDLES, before=None, match={"exchange": "bybit", "symbol_id": "BTCUSDT"})
    update_signals(unit, settings)
    assert stored(settings, unit).empty and stored(settings, unit, "trap_events").empty
