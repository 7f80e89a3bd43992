"""`vectorflow demo` end to end in its own process: simulator, flow, catalog, printed summary."""

from __future__ import annotations

import duckdb

from tests.conftest import run_cli

#: Perpetual bars whose close (and previous close) has open interest within max(2 bars, 2 h),
#: those of them without the OI columns; bars with funding within two intervals, those without.
OI_FILLED = """
WITH s AS (
    SELECT *, CASE timeframe WHEN '5m' THEN INTERVAL 5 MINUTE WHEN '30m' THEN INTERVAL 30 MINUTE
                             ELSE INTERVAL 1 HOUR END AS step
    FROM signals WHERE market = 'linear'
), judged AS (
    SELECT oi_change, oi_quadrant, funding_annualized,
           EXISTS (SELECT 1 FROM open_interest o WHERE o.exchange = s.exchange
                   AND o.symbol = s.symbol AND o.time BETWEEN s.as_of - INTERVAL 2 HOUR AND s.as_of)
           AND EXISTS (SELECT 1 FROM open_interest o WHERE o.exchange = s.exchange
                       AND o.symbol = s.symbol
                       AND o.time BETWEEN s.as_of - s.step - INTERVAL 2 HOUR AND s.as_of - s.step)
               AS has_oi,
           EXISTS (SELECT 1 FROM funding_rates f WHERE f.exchange = s.exchange
                   AND f.symbol = s.symbol AND f.funding_time <= s.as_of
                   AND f.funding_time >= s.as_of
                       - to_milliseconds(CAST(2 * f.interval_hours * 3600000 AS BIGINT)))
               AS has_funding
    FROM s
)
SELECT count(*) FILTER (WHERE has_oi),
       count(*) FILTER (WHERE has_oi AND (oi_change IS NULL OR oi_quadrant IS NULL)),
       count(*) FILTER (WHERE has_funding),
       count(*) FILTER (WHERE has_funding AND funding_annualized IS NULL)
FROM judged"""


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
    derivatives = con.execute(OI_FILLED).fetchone()
    con.close()
    # open interest landed after the candles: the market-data step filled the bars it covers
    assert derivatives[0] > 10_000 and derivatives[2] > 10_000, derivatives
    assert derivatives[1] == derivatives[3] == 0, derivatives
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
