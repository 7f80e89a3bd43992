"""The catalog view of how far each series' stored signals are current: `signal_coverage`.

Judged from the lake alone, bar by bar, as the signals pipeline judges it
(`vectorflow.pipelines.lineage`): a row computed by other signal code (`code_changed`), a row
whose newest open interest or funding observation at or before its bar differs from what is
stored now (`missing_oi`), and a row whose candles changed since (`history_changed`: a candle
of the series landed later than the newest the row saw, a bar without a row before the last
stored one, a row without its candle). Two things need more than the lake: the options the
settings choose (`options_changed`, which `vectorflow status` adds) and the TPO candles of a
coarser series (judged by the next signals run).
"""

from __future__ import annotations

from vectorflow.timeframes import TIMEFRAMES, timeframe_ms

_SERIES = "exchange, market, symbol, timeframe"


def signal_coverage_sql(code_version: str) -> str:
    """signal_coverage: per series with signals, its stored bars and the first stale one."""
    steps = ", ".join(f"('{tf}', {timeframe_ms(tf)})" for tf in TIMEFRAMES)
    code = code_version.replace("'", "''")
    return f"""
WITH steps(timeframe, step_ms) AS (VALUES {steps}),
bars AS (  -- each stored candle of a series with signals, as the bar it closes
    SELECT c.exchange, c.market, c.symbol, c.timeframe,
           c.open_time + to_milliseconds(s.step_ms) AS as_of,
           max(c.ingested_at) OVER (PARTITION BY c.exchange, c.market, c.symbol, c.timeframe
                                    ORDER BY c.open_time) AS landed
    FROM candles c JOIN steps s USING (timeframe)
    WHERE ({_SERIES}) IN (SELECT DISTINCT {_SERIES} FROM signals)
), with_oi AS (
    SELECT s.*, o.time AS oi_now
    FROM signals s ASOF LEFT JOIN (SELECT exchange, symbol, time FROM open_interest) o
        ON o.exchange = s.exchange AND o.symbol = s.symbol AND o.time <= s.as_of
), stored AS (
    SELECT s.*, f.funding_time AS funding_now
    FROM with_oi s ASOF LEFT JOIN (SELECT exchange, symbol, funding_time FROM funding_rates) f
        ON f.exchange = s.exchange AND f.symbol = s.symbol AND f.funding_time <= s.as_of
), judged AS (
    SELECT coalesce(s.exchange, b.exchange) AS exchange, coalesce(s.market, b.market) AS market,
           coalesce(s.symbol, b.symbol) AS symbol, coalesce(s.timeframe, b.timeframe) AS timeframe,
           coalesce(s.as_of, b.as_of) AS as_of, s.as_of IS NOT NULL AS has_row, s.ingested_at,
           CASE
               WHEN s.as_of IS NULL OR b.as_of IS NULL THEN 'history_changed'
               WHEN s.code_version IS DISTINCT FROM '{code}' THEN 'code_changed'
               WHEN s.oi_now IS DISTINCT FROM s.oi_through
                    OR s.funding_now IS DISTINCT FROM s.funding_through THEN 'missing_oi'
               WHEN b.landed > s.candles_landed THEN 'history_changed'
           END AS reason
    FROM stored s FULL JOIN bars b USING ({_SERIES}, as_of)
), placed AS (
    SELECT *, max(as_of) FILTER (WHERE has_row) OVER (PARTITION BY {_SERIES}) AS last_row
    FROM judged
), flagged AS (  -- bars after the last row are new, not stale
    SELECT *, reason IS NOT NULL AND (has_row OR as_of < last_row) AS stale FROM placed
), marked AS (
    SELECT *, min(as_of) FILTER (WHERE stale) OVER (PARTITION BY {_SERIES}) AS stale_from
    FROM flagged
)
SELECT {_SERIES},
       min(as_of) FILTER (WHERE has_row) AS first_time, max(last_row) AS last_time,
       count(*) FILTER (WHERE has_row) AS rows, count(*) FILTER (WHERE NOT has_row) AS missing,
       max(ingested_at) AS last_landed,
       max(as_of) FILTER (WHERE has_row AND (stale_from IS NULL OR as_of < stale_from))
           AS current_through,
       any_value(stale_from) AS stale_from,
       arg_min(reason, as_of) FILTER (WHERE stale) AS stale_reason
FROM marked GROUP BY ALL HAVING count(*) FILTER (WHERE has_row) > 0"""
