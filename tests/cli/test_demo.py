"""`vectorflow demo` end to end in its own process: simulator, flow, catalog, printed summary."""

from __future__ import annotations

import duckdb

from tests.conftest import run_cli


def test_demo_lands_four_series_at_three_timeframes(prefect_api, data_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_cli(["demo"], {"VECTORFLOW_DATA_DIR": str(data_dir)}, prefect_api, cwd=elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "vectorflow sql" in done.stdout  # it prints a query to try
    con = duckdb.connect(str(data_dir / "vectorflow.duckdb"), read_only=True)
    counts = con.execute(
        "SELECT exchange, market, timeframe, count(*), count(DISTINCT open_time) "
        "FROM candles GROUP BY ALL"
    ).fetchall()
    signal_series = con.execute("SELECT count(DISTINCT (exchange, market, timeframe)) FROM signals "
                                "WHERE regime <> 'insufficient_data'").fetchone()[0]
    hourly = con.execute(
        "SELECT min(n) FROM (SELECT count(*) AS n FROM candles "
        "WHERE timeframe = '1h' GROUP BY exchange, market)"
    ).fetchone()[0]
    market_data = con.execute(
        "SELECT (SELECT count(DISTINCT (exchange, market)) FROM orderbook_stats), "
        "(SELECT count(DISTINCT exchange) FROM open_interest), "
        "(SELECT count(DISTINCT exchange) FROM funding_rates), "
        "(SELECT count(*) FROM market_snapshot WHERE basis_bps IS NOT NULL)"
    ).fetchone()
    con.close()
    assert market_data == (4, 2, 2, 2)  # books of 4 markets; OI, funding, basis on 2 exchanges
    assert "spread_bps" in done.stdout and "basis_bps" in done.stdout  # one row of each view
    series = {(e, m) for e, m, _, _, _ in counts}
    assert series == {
        ("binance", "spot"),
        ("binance", "linear"),
        ("bybit", "spot"),
        ("bybit", "linear"),
    }
    assert {tf for _, _, tf, _, _ in counts} == {"5m", "30m", "1h"}
    assert all(n == distinct for *_, n, distinct in counts)
    assert hourly >= 250  # enough hourly bars for the regime signals
    assert signal_series == 12  # every demo series has labelled signal rows
    assert list(elsewhere.iterdir()) == []  # nothing written in the working folder
