"""Catalog views over the market data: order book stats, the cross-exchange snapshot, coverage.

All are plain SQL over the dataset views (`candles`, `orderbook_levels`, `open_interest`,
`funding_rates`, `coverage_ranges`), so they follow new files without a rebuild.
"""

from __future__ import annotations

from vectorflow.timeframes import TIMEFRAMES, timeframe_ms


def _steps() -> str:
    return ", ".join(f"('{tf}', {timeframe_ms(tf)})" for tf in TIMEFRAMES)


#: orderbook_stats: per snapshot the mid, the spread (bps), the quote value resting within 0.5 %
#: and 1 % of the mid on each side, and the imbalance (bid - ask) / (bid + ask) of that depth
ORDERBOOK_STATS_SQL = """
WITH levels AS (
    SELECT *,
           max(price) FILTER (WHERE side = 'bid') OVER snapshot AS best_bid,
           min(price) FILTER (WHERE side = 'ask') OVER snapshot AS best_ask
    FROM orderbook_levels
    WINDOW snapshot AS (PARTITION BY exchange, market, symbol, snapshot_time)
), depth AS (
    SELECT exchange, market, symbol, snapshot_time,
           any_value(time_source) AS time_source,
           any_value(best_bid) AS best_bid, any_value(best_ask) AS best_ask,
           (any_value(best_bid) + any_value(best_ask)) / 2 AS mid,
           count(*) FILTER (WHERE side = 'bid') AS bid_levels,
           count(*) FILTER (WHERE side = 'ask') AS ask_levels,
           sum(price * amount) FILTER (
               WHERE side = 'bid' AND price >= (best_bid + best_ask) / 2 * 0.995) AS bid_50,
           sum(price * amount) FILTER (
               WHERE side = 'ask' AND price <= (best_bid + best_ask) / 2 * 1.005) AS ask_50,
           sum(price * amount) FILTER (
               WHERE side = 'bid' AND price >= (best_bid + best_ask) / 2 * 0.99) AS bid_100,
           sum(price * amount) FILTER (
               WHERE side = 'ask' AND price <= (best_bid + best_ask) / 2 * 1.01) AS ask_100
    FROM levels
    GROUP BY exchange, market, symbol, snapshot_time
)
SELECT exchange, market, symbol, snapshot_time, time_source, bid_levels, ask_levels,
       best_bid, best_ask, mid,
       (best_ask - best_bid) / mid * 1e4 AS spread_bps,
       coalesce(bid_50, 0) AS bid_depth_50bps_quote,
       coalesce(ask_50, 0) AS ask_depth_50bps_quote,
       (coalesce(bid_50, 0) - coalesce(ask_50, 0))
           / nullif(coalesce(bid_50, 0) + coalesce(ask_50, 0), 0) AS imbalance_50bps,
       coalesce(bid_100, 0) AS bid_depth_100bps_quote,
       coalesce(ask_100, 0) AS ask_depth_100bps_quote,
       (coalesce(bid_100, 0) - coalesce(ask_100, 0))
           / nullif(coalesce(bid_100, 0) + coalesce(ask_100, 0), 0) AS imbalance_100bps
FROM depth"""


def market_snapshot_sql() -> str:
    """market_snapshot: latest closed price per venue of each base/quote listed on 2+ exchanges."""
    return f"""
WITH steps(timeframe, step_ms) AS (VALUES {_steps()}),
latest AS (
    SELECT c.exchange, c.market, c.symbol, c.timeframe, s.step_ms,
           max(c.open_time) AS last_open
    FROM candles c JOIN steps s USING (timeframe)
    GROUP BY ALL
), chosen AS (  -- per venue, its freshest timeframe (the finer one on a tie)
    SELECT * FROM latest
    QUALIFY row_number() OVER (
        PARTITION BY exchange, market, symbol
        ORDER BY last_open + to_milliseconds(step_ms) DESC, step_ms) = 1
), venue AS (
    SELECT ch.exchange, ch.market, ch.symbol, split_part(ch.symbol, ':', 1) AS base_quote,
           ch.timeframe, ch.last_open + to_milliseconds(ch.step_ms) AS price_time,
           arg_max(c.close, c.open_time) AS close,
           sum(c.quote_volume) FILTER (
               WHERE c.open_time >= ch.last_open + to_milliseconds(ch.step_ms) - INTERVAL 24 HOUR
           ) AS quote_volume_24h
    FROM chosen ch JOIN candles c USING (exchange, market, symbol, timeframe)
    GROUP BY ALL
), shared AS (
    SELECT * FROM venue
    WHERE base_quote IN (
        SELECT base_quote FROM venue GROUP BY base_quote HAVING count(DISTINCT exchange) > 1)
)
SELECT v.base_quote, v.exchange, v.market, v.symbol, v.timeframe, v.price_time, v.close,
       (max(v.close) OVER m - min(v.close) OVER m)
           / ((max(v.close) OVER m + min(v.close) OVER m) / 2) * 1e4 AS exchange_spread_bps,
       CASE WHEN v.market = 'linear' THEN (v.close / s.close - 1) * 1e4 END AS basis_bps,
       v.quote_volume_24h,
       v.quote_volume_24h / sum(v.quote_volume_24h) OVER (PARTITION BY v.base_quote)
           AS volume_share_24h
FROM shared v
LEFT JOIN shared s
    ON s.base_quote = v.base_quote AND s.exchange = v.exchange AND s.market = 'spot'
WINDOW m AS (PARTITION BY v.base_quote, v.market)"""


def candle_gaps_sql() -> str:
    """candle_gaps: missing candles between stored ones, and whether the exchange said so."""
    return f"""
WITH steps(timeframe, step_ms) AS (VALUES {_steps()}),
ordered AS (
    SELECT c.exchange, c.market, c.symbol, c.timeframe, c.open_time, s.step_ms,
           lead(c.open_time) OVER (
               PARTITION BY c.exchange, c.market, c.symbol, c.timeframe ORDER BY c.open_time
           ) AS next_open
    FROM candles c JOIN steps s ON s.timeframe = c.timeframe
), gaps AS (
    SELECT exchange, market, symbol, timeframe,
           open_time + to_milliseconds(step_ms) AS gap_start,
           next_open AS gap_end,
           (epoch_ms(next_open) - epoch_ms(open_time)) // step_ms - 1 AS missing
    FROM ordered
    WHERE epoch_ms(next_open) - epoch_ms(open_time) > step_ms
)
SELECT g.*,
       CASE WHEN EXISTS (
           SELECT 1 FROM coverage_ranges r
           WHERE r.dataset = 'candles' AND r.exchange = g.exchange AND r.market = g.market
             AND r.symbol = g.symbol AND r.series = g.timeframe
             AND r.range_start <= g.gap_start AND r.range_end >= g.gap_end
       ) THEN 'exchange_empty' ELSE 'never_fetched' END AS status
FROM gaps g"""


def coverage_sql() -> str:
    """coverage: per series of every market dataset and of the signals, what is stored and what
    is missing; for signals also how far they are current and why not further."""
    return f"""
WITH steps(timeframe, step_ms) AS (VALUES {_steps()}),
candle_series AS (
    SELECT 'candles' AS dataset, exchange, market, symbol, timeframe AS series,
           min(open_time) AS first_time, max(open_time) AS last_time, count(*) AS rows,
           (epoch_ms(max(open_time)) - epoch_ms(min(open_time))) // any_value(step_ms) + 1
               - count(*) AS missing,
           max(ingested_at) AS last_landed
    FROM candles JOIN steps USING (timeframe) GROUP BY ALL
), candle_empty AS (
    SELECT exchange, market, symbol, timeframe AS series, sum(missing) AS confirmed_empty
    FROM candle_gaps WHERE status = 'exchange_empty' GROUP BY ALL
), oi AS (
    SELECT 'open_interest' AS dataset, exchange, 'linear' AS market, symbol, period AS series,
           min(time) AS first_time, max(time) AS last_time, count(*) AS rows,
           (epoch_ms(max(time)) - epoch_ms(min(time))) // any_value(step_ms) + 1 - count(*)
               AS missing,
           max(ingested_at) AS last_landed
    FROM open_interest JOIN steps ON steps.timeframe = period GROUP BY ALL
), funding_gaps AS (
    SELECT exchange, symbol, funding_time, ingested_at,
           greatest(round((epoch_ms(lead(funding_time) OVER w) - epoch_ms(funding_time))
               / (lead(interval_hours) OVER w * 3600000)) - 1, 0) AS missing
    FROM funding_rates WINDOW w AS (PARTITION BY exchange, symbol ORDER BY funding_time)
), funding AS (
    SELECT 'funding_rates' AS dataset, exchange, 'linear' AS market, symbol, 'all' AS series,
           min(funding_time) AS first_time, max(funding_time) AS last_time, count(*) AS rows,
           coalesce(sum(missing), 0)::BIGINT AS missing, max(ingested_at) AS last_landed
    FROM funding_gaps GROUP BY ALL
), books AS (
    SELECT 'orderbook_levels' AS dataset, exchange, market, symbol, 'snapshots' AS series,
           min(snapshot_time) AS first_time, max(snapshot_time) AS last_time,
           count(DISTINCT snapshot_time) AS rows, NULL::BIGINT AS missing,
           max(ingested_at) AS last_landed
    FROM orderbook_levels GROUP BY ALL
), empties AS (
    SELECT dataset, exchange, market, symbol, series, max(ingested_at) AS last_empty
    FROM coverage_ranges GROUP BY ALL
), stored AS (
    SELECT * FROM candle_series UNION ALL SELECT * FROM oi
    UNION ALL SELECT * FROM funding UNION ALL SELECT * FROM books
)
SELECT s.dataset, s.exchange, s.market, s.symbol, s.series, s.first_time, s.last_time,
       s.rows, s.missing,
       CASE WHEN s.dataset = 'candles' THEN coalesce(ce.confirmed_empty, 0) END
           AS confirmed_empty,
       greatest(s.last_landed, e.last_empty) AS last_fetched_at,
       NULL::TIMESTAMP AS current_through, NULL::TIMESTAMP AS stale_from,
       NULL::VARCHAR AS stale_reason
FROM stored s
LEFT JOIN candle_empty ce
    ON s.dataset = 'candles' AND ce.exchange = s.exchange AND ce.market = s.market
       AND ce.symbol = s.symbol AND ce.series = s.series
LEFT JOIN empties e
    ON e.dataset = s.dataset AND e.exchange = s.exchange AND e.market = s.market
       AND e.symbol = s.symbol AND e.series = s.series
UNION ALL  -- signals: bars of stored candles without a row are `missing`
SELECT 'signals', exchange, market, symbol, timeframe, first_time, last_time, rows, missing,
       NULL, last_landed, current_through, stale_from, stale_reason
FROM signal_coverage"""


def market_views() -> dict[str, str]:
    """The market-data views by name."""
    return {
        "candle_gaps": candle_gaps_sql(),
        "orderbook_stats": ORDERBOOK_STATS_SQL,
        "market_snapshot": market_snapshot_sql(),
        "coverage": coverage_sql(),
    }
