"""One pinned Arrow schema per dataset, used by every writer; times are UTC without a zone."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from vectorflow.timeframes import timeframe_ms

TIME = pa.timestamp("ms")  # UTC, no zone: no DuckDB session time zone can shift it
FUNDING_GAP_MS = 8 * 3_600_000  # the longest funding interval: a shorter hole is no gap


@dataclass(frozen=True)
class Dataset:
    """A lake dataset: its schema, natural key and hive partition keys."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    partitions: tuple[str, ...]  # path components, in order; named so none collides with a column
    order_by: str  # the column that orders rows within a partition (newest wins)
    # A file holds every key of its partition between its first and last `order_by` time (a
    # fetched range): views and compaction use the file-name ranges (`vectorflow.lake.store`)
    complete_ranges: bool = False
    # Compaction leaves one file per partition and period (day/month/year): the part of each
    # period before the current `settle_unit` (month for a year, else day) is one file
    period: str = "month"
    # values of columns added later, for rows of files written before them (column, value)
    defaults: tuple[tuple[str, str], ...] = ()
    # The gap rule, the largest distance between two rows of one fetched range: the partition
    # key holding the series' timeframe, fixed ms, or None (order books: never refetched)
    row_step: str | int | None = None

    @property
    def settle_unit(self) -> str:
        """Rows before the start of the current unit of this size are final (compacted)."""
        return "month" if self.period == "year" else "day"

    @property
    def stepped_by_series(self) -> bool:
        """True when the step is the series' own timeframe (candles, open interest)."""
        return isinstance(self.row_step, str)

    def step_ms(self, series: str | None = None) -> int | None:
        """The gap rule of a series (of `series`, its timeframe, when the step depends on it)."""
        if self.stepped_by_series:
            return timeframe_ms(series) if series else None
        return self.row_step

    def gap_ms(self, values: dict[str, str]) -> int | None:
        """The gap rule of the partition with these partition values."""
        return self.step_ms(values.get(self.row_step) if self.stepped_by_series else None)

    def select_list(self) -> str:
        """The SQL select list of the schema's columns, added columns defaulted for old files."""
        fill = dict(self.defaults)

        def column(name: str) -> str:
            if name not in fill:
                return f'"{name}"'
            value = fill[name].replace("'", "''")
            return f"coalesce(\"{name}\", '{value}') AS \"{name}\""

        return ", ".join(column(f.name) for f in self.schema)


def _typed(names: str, kind: pa.DataType, *, nullable: bool = True) -> list[pa.Field]:
    return [pa.field(name, kind, nullable=nullable) for name in names.split()]


_SERIES = _typed("exchange market symbol timeframe", pa.string(), nullable=False)

CANDLES = Dataset(
    name="candles",
    schema=pa.schema(
        [
            *_SERIES,
            pa.field("open_time", TIME, nullable=False),
            *_typed("open high low close volume", pa.float64(), nullable=False),
            pa.field("quote_volume", pa.float64()),
            pa.field("trades", pa.int64()),
            pa.field("taker_buy_volume", pa.float64()),
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("exchange", "market", "symbol", "timeframe", "open_time"),
    partitions=("exchange", "market", "symbol_id", "timeframe"),
    order_by="open_time",
    complete_ranges=True,
    period="year",  # one file per series and year (this year's: up to its last closed month)
    row_step="timeframe",
)

#: One row per playbook request (Grok or rules), with the raw answers kept alongside.
PLAYBOOKS = Dataset(
    name="playbooks",
    schema=pa.schema(
        [
            pa.field("playbook_id", pa.string(), nullable=False),
            pa.field("created_at", TIME, nullable=False),
            pa.field("run_id", pa.string()),
            *_SERIES,
            pa.field("as_of", TIME, nullable=False),
            pa.field("source", pa.string(), nullable=False),  # grok | rules
            pa.field("status", pa.string(), nullable=False),  # ok, repaired, abstained, error, ...
            pa.field("cached", pa.bool_(), nullable=False),
            pa.field("model", pa.string()),
            pa.field("prompt_version", pa.string()),
            pa.field("inputs_hash", pa.string()),
            pa.field("bias", pa.string()),  # long | short | no_trade; null when none was given
            pa.field("confidence", pa.int32()),
            pa.field("entry_type", pa.string()),
            pa.field("entry_low", pa.float64()),
            pa.field("entry_high", pa.float64()),
            pa.field("entry_trigger", pa.string()),
            pa.field("stop_loss", pa.float64()),
            pa.field(
                "targets",
                pa.list_(
                    pa.struct([pa.field("price", pa.float64()), pa.field("share", pa.float64())])
                ),
            ),
            pa.field("rr_ratio", pa.float64()),
            pa.field("max_risk", pa.float64()),  # fraction of equity
            pa.field("invalidation", pa.string()),
            pa.field("rationale", pa.string()),
            pa.field("levels_used", pa.list_(pa.string())),
            pa.field("last_price", pa.float64()),
            pa.field("atr", pa.float64()),
            pa.field("regime", pa.string()),
            pa.field("tokens_in", pa.int64()),
            pa.field("tokens_out", pa.int64()),
            pa.field("latency_ms", pa.int64()),
            pa.field("requests", pa.int32()),
            pa.field("error", pa.string()),
            pa.field("payload", pa.string()),  # the user payload sent (or that would be sent)
            pa.field("raw_answers", pa.list_(pa.string())),  # every answer text, in order
            pa.field("level_prices", pa.list_(pa.float64())),  # of levels_used, in order
            pa.field("valid_until", TIME),  # as_of + the grading horizon
            pa.field("tick_size", pa.float64()),
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("playbook_id",),
    partitions=("exchange", "market", "symbol_id", "timeframe"),
    order_by="as_of",
)

#: The graded result of a past playbook against the candles that followed it.
PLAYBOOK_OUTCOMES = Dataset(
    name="playbook_outcomes",
    schema=pa.schema(
        [
            pa.field("playbook_id", pa.string(), nullable=False),
            pa.field("evaluated_at", TIME, nullable=False),
            *_SERIES,
            pa.field("as_of", TIME, nullable=False),
            pa.field("outcome", pa.string(), nullable=False),  # not_triggered, stopped, ...
            pa.field("triggered", pa.bool_(), nullable=False),
            pa.field("entry_time", TIME),
            pa.field("entry_price", pa.float64()),
            pa.field("exit_time", TIME),
            pa.field("exit_price", pa.float64()),
            pa.field("r_multiple", pa.float64()),
            pa.field("mfe", pa.float64()),  # maximum favourable excursion, fraction of entry
            pa.field("mae", pa.float64()),  # maximum adverse excursion, fraction of entry
            pa.field("bars_to_outcome", pa.int32()),
            pa.field("horizon_bars", pa.int32(), nullable=False),
            pa.field("bias", pa.string()),  # long | short | no_trade
            pa.field("move", pa.float64()),  # close at the horizon / close at as_of - 1
            pa.field("missed_r", pa.float64()),  # no_trade: the better 1-ATR-stop trade's R
            pa.field("avoided_loss", pa.bool_()),  # no_trade: neither such trade would have won
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("playbook_id", "evaluated_at"),
    partitions=("exchange", "market", "symbol_id", "timeframe"),
    order_by="as_of",
)

_METRICS = [  # vectorflow.backtest.metrics: vectorbt's numbers as fractions, null when inf/NaN
    *(
        pa.field(name, pa.float64())
        for name in (
            "total_return", "benchmark_return", "sharpe_ratio", "sortino_ratio", "calmar_ratio",
            "max_drawdown", "win_rate", "profit_factor", "exposure",
        )
    ),
    pa.field("trades", pa.int64()),
    pa.field("closed_trades", pa.int64()),
    pa.field("null_reasons", pa.string()),  # JSON {metric: why it is null}
]  # fmt: skip

#: One row per backtest run: a strategy, one parameter set, one window, one sample; and per
#: strategy and backtest one `chained` row: the in-sample choices' out-of-sample parts, chained.
BACKTEST_RUNS = Dataset(
    name="backtest_runs",
    schema=pa.schema(
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("batch_id", pa.string(), nullable=False),  # one backtest of one series
            pa.field("run_at", TIME, nullable=False),
            *_SERIES,
            pa.field("strategy", pa.string(), nullable=False),
            pa.field("params", pa.string(), nullable=False),  # JSON keyed by parameter name
            pa.field("split", pa.string(), nullable=False),  # holdout | walk_forward
            pa.field("sample", pa.string(), nullable=False),  # in | out | full | chained
            pa.field("window_index", pa.int32(), nullable=False),
            pa.field("window_start", TIME, nullable=False),  # first bar's open time
            pa.field("window_end", TIME, nullable=False),  # last bar's close time (exclusive)
            pa.field("bars", pa.int64(), nullable=False),
            pa.field("selection_metric", pa.string(), nullable=False),
            pa.field("is_rank", pa.int32()),  # in-sample rank of these parameters (1 = best)
            pa.field("is_run_id", pa.string()),  # out rows: the in-sample run that chose them;
            # chained rows: the latest window's choice
            pa.field("leader", pa.bool_(), nullable=False),  # its trades are stored
            pa.field("oos_windows", pa.int32()),  # chained rows: out-of-sample parts chained
            pa.field("trials", pa.int64()),  # in-sample choices and chained rows: sets tried
            pa.field("dsr", pa.float64()),  # Deflated Sharpe Ratio of the in-sample choice
            pa.field("pbo", pa.float64()),  # Probability of Backtest Overfitting (CSCV)
            *_METRICS,
            pa.field("fees", pa.float64(), nullable=False),
            pa.field("slippage", pa.float64(), nullable=False),
            pa.field("init_cash", pa.float64(), nullable=False),
            pa.field("direction", pa.string(), nullable=False),  # long_only | long_short
            pa.field("code_version", pa.string(), nullable=False),
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("run_id",),
    partitions=("exchange", "market", "symbol_id", "timeframe"),
    order_by="run_at",
)

#: The trades of the leaders' runs and of every out-of-sample run (vectorbt's exit trades).
BACKTEST_TRADES = Dataset(
    name="backtest_trades",
    schema=pa.schema(
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("entry_time", TIME, nullable=False),  # close time of the entry bar
            *_SERIES,
            pa.field("strategy", pa.string(), nullable=False),
            pa.field("sample", pa.string(), nullable=False),
            pa.field("side", pa.string(), nullable=False),  # long | short
            pa.field("status", pa.string(), nullable=False),  # closed | open (at the window end)
            pa.field("size", pa.float64(), nullable=False),
            pa.field("entry_price", pa.float64(), nullable=False),
            pa.field("exit_time", TIME, nullable=False),
            pa.field("exit_price", pa.float64(), nullable=False),
            pa.field("fees", pa.float64(), nullable=False),  # entry + exit, quote currency
            pa.field("pnl", pa.float64(), nullable=False),  # quote currency, after fees
            pa.field("return", pa.float64(), nullable=False),  # fraction of the entry value
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("run_id", "entry_time"),
    partitions=("exchange", "market", "symbol_id", "timeframe"),
    order_by="entry_time",
)

#: Top N levels per side of order book snapshots; level 0 is the best price.
ORDERBOOK_LEVELS = Dataset(
    name="orderbook_levels",
    schema=pa.schema(
        [
            *_typed("exchange market symbol", pa.string(), nullable=False),
            pa.field("snapshot_time", TIME, nullable=False),
            pa.field("side", pa.string(), nullable=False),  # bid | ask
            pa.field("level", pa.int32(), nullable=False),
            pa.field("price", pa.float64(), nullable=False),
            pa.field("amount", pa.float64(), nullable=False),  # base currency
            pa.field("time_source", pa.string(), nullable=False),  # exchange | local
            pa.field("source", pa.string(), nullable=False),  # rest | stream
            pa.field("update_id", pa.int64()),  # lastUpdateId (Binance) / u (Bybit)
            pa.field("received_at", TIME, nullable=False),  # local receive time
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("exchange", "market", "symbol", "snapshot_time", "side", "level"),
    partitions=("exchange", "market", "symbol_id"),
    order_by="snapshot_time",
    complete_ranges=True,
    period="day",
    defaults=(("source", "rest"),),  # files from before streams hold REST snapshots only
)

#: Open interest history of perpetuals; the value is in the quote currency.
OPEN_INTEREST = Dataset(
    name="open_interest",
    schema=pa.schema(
        [
            pa.field("exchange", pa.string(), nullable=False),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("period", pa.string(), nullable=False),  # 5m 15m 30m 1h 4h 1d
            pa.field("time", TIME, nullable=False),
            pa.field("open_interest", pa.float64(), nullable=False),  # base currency
            pa.field("open_interest_value", pa.float64()),  # quote currency
            pa.field("value_source", pa.string(), nullable=False),  # exchange | close_price
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("exchange", "symbol", "period", "time"),
    partitions=("exchange", "symbol_id", "period"),
    order_by="time",
    complete_ranges=True,
    period="year",
    row_step="period",
)

#: Funding rates of perpetuals, as fractions per funding interval.
FUNDING_RATES = Dataset(
    name="funding_rates",
    schema=pa.schema(
        [
            *_typed("exchange symbol", pa.string(), nullable=False),
            pa.field("funding_time", TIME, nullable=False),
            pa.field("funding_rate", pa.float64(), nullable=False),
            pa.field("interval_hours", pa.float64(), nullable=False),
            pa.field("mark_price", pa.float64()),
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("exchange", "symbol", "funding_time"),
    partitions=("exchange", "symbol_id"),
    order_by="funding_time",
    complete_ranges=True,
    period="year",
    row_step=FUNDING_GAP_MS,
)

#: Ranges the exchange confirmed empty (before listing, maintenance, after delisting), per series
#: of a dataset (`series` is the timeframe of candles, the period of open interest, else `all`).
COVERAGE_RANGES = Dataset(
    name="coverage_ranges",
    schema=pa.schema(
        [
            pa.field("dataset", pa.string(), nullable=False),
            *_typed("exchange market symbol series", pa.string(), nullable=False),
            pa.field("range_start", TIME, nullable=False),
            pa.field("range_end", TIME, nullable=False),  # exclusive
            pa.field("status", pa.string(), nullable=False),  # exchange_empty
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("dataset", "exchange", "market", "symbol", "series", "range_start"),
    partitions=("dataset", "exchange", "market", "symbol_id", "series"),
    order_by="range_start",
    complete_ranges=True,
    period="year",
    row_step=1,  # ranges that touch or overlap are one
)

#: What a derived row was computed from (docs/signals.md#lineage): the signal code version, the
#: options, and per input the extent it saw at the bar: candles (the series' and its TPO candles)
#: closed by then and the newest `ingested_at` among them, the newest open interest and funding
#: observation at or before it, and the newest `ingested_at` among those.
LINEAGE = [
    pa.field("code_version", pa.string()),
    pa.field("signal_options", pa.string()),  # canonical JSON of the options a run chose
    pa.field("candles_seen", pa.int64()),
    pa.field("candles_landed", TIME),
    pa.field("oi_through", TIME),
    pa.field("funding_through", TIME),
    pa.field("derivatives_landed", TIME),
]
LINEAGE_COLUMNS = tuple(f.name for f in LINEAGE)

#: One row per series and closed bar (vectorflow.signals.STORED_COLUMNS, in that order), then
#: its lineage. Range dataset: a file holds every bar of its series between its first and last.
SIGNALS = Dataset(
    name="signals",
    schema=pa.schema(
        [
            *_SERIES,
            pa.field("as_of", TIME, nullable=False),
            pa.field("tpo_session", TIME),
            *_typed("tpo_row_size tpo_poc tpo_vah tpo_val tpo_ib_high tpo_ib_low", pa.float64()),
            *_typed("tpo_poor_high tpo_poor_low", pa.bool_()),
            *_typed("vp_poc vp_vah vp_val", pa.float64()),
            pa.field("regime", pa.string()),
            *_typed("adx plus_di minus_di natr natr_rank", pa.float64()),
            pa.field("last_trap_type", pa.string()),
            pa.field("last_trap_time", TIME),
            pa.field("last_trap_level", pa.float64()),
            pa.field("oi_quadrant", pa.string()),
            *_typed("oi_change oi_change_24h price_change oi_zscore funding_annualized",
                    pa.float64()),
            *LINEAGE,
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("exchange", "market", "symbol", "timeframe", "as_of"),
    partitions=("exchange", "market", "symbol_id", "timeframe"),
    order_by="as_of",
    complete_ranges=True,  # a recompute replaces the rows from a bar on in one snapshot
    period="month",
    row_step="timeframe",
)

#: One row per trap or sweep event (vectorflow.signals.TRAP_EVENT_COLUMNS), then its lineage.
TRAP_EVENTS = Dataset(
    name="trap_events",
    schema=pa.schema(
        [
            *_SERIES,
            *_typed("type side", pa.string()),
            pa.field("level", pa.float64()),
            pa.field("level_source", pa.string()),
            *_typed("breakout_time confirm_time", TIME),
            *_typed("breakout_volume_ratio oi_change", pa.float64()),
            pa.field("funding_sign", pa.int8()),
            pa.field("extreme", pa.float64()),
            pa.field("invalidated_time", TIME),
            *LINEAGE,  # of the confirming bar
            pa.field("ingested_at", TIME, nullable=False),
        ]
    ),
    key=("exchange", "market", "symbol", "timeframe", "type", "level_source", "confirm_time"),
    partitions=("exchange", "market", "symbol_id", "timeframe"),
    order_by="confirm_time",
    complete_ranges=True,
    period="year",
)

MARKET_DATASETS = (ORDERBOOK_LEVELS, OPEN_INTEREST, FUNDING_RATES, COVERAGE_RANGES)

DATASETS: dict[str, Dataset] = {
    CANDLES.name: CANDLES,
    **{ds.name: ds for ds in MARKET_DATASETS},
    SIGNALS.name: SIGNALS,
    TRAP_EVENTS.name: TRAP_EVENTS,
    PLAYBOOKS.name: PLAYBOOKS,
    PLAYBOOK_OUTCOMES.name: PLAYBOOK_OUTCOMES,
    BACKTEST_RUNS.name: BACKTEST_RUNS,
    BACKTEST_TRADES.name: BACKTEST_TRADES,
}
