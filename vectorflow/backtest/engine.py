"""The grid engine: every parameter set simulated and measured in one numba pass over its column.

vectorbt stays the reference: this is `Portfolio.from_signals` as `portfolio.simulate` calls it
(all cash per entry, fills at the bar's close, taker fee and slippage, optional stop-loss and
take-profit checked against each bar's open/high/low, long only or both sides), run with
vectorbt's own order functions (`execute_order_nb`, `signals_to_size_nb`, its conflict resolvers,
`get_stop_price_nb`, `add_nb`), one column at a time; a bar without a signal or an armed stop
skips the order logic. Instead of order records, a Portfolio and eleven metric calls per chunk,
each column's value is rebuilt bar by bar the way vectorbt's `value()` rebuilds it from its
records (`get_return_nb` per bar), the ratios are vectorbt's returns kernels' arithmetic (the
same sums in the same order, in one pass), and its trades are booked as vectorbt's exit trades
are. tests/backtest/test_engine.py checks every metric against `metrics.raw_metrics` of a
vectorbt Portfolio within 1e-9.

Besides the metrics, each column yields per-block sums of its bar returns (count, sum, sum of
squares, sum of squared losses, growth factor) for the overfitting statistics.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from vectorbt.generic.nb import crossed_above_1d_nb
from vectorbt.portfolio.enums import (
    AccumulationMode,
    ConflictMode,
    Direction,
    DirectionConflictMode,
    OppositeEntryMode,
    OrderSide,
    OrderStatus,
    ProcessOrderState,
    SizeType,
    StopExitMode,
    StopExitPrice,
    TradeDirection,
)
from vectorbt.portfolio.nb import (
    execute_order_nb,
    generate_stop_signal_nb,
    get_stop_price_nb,
    get_trade_stats_nb,
    order_nb,
    resolve_dir_conflict_nb,
    resolve_opposite_entry_nb,
    resolve_signal_conflict_nb,
    resolve_stop_price_and_slippage_nb,
    signals_to_size_nb,
)
from vectorbt.returns.nb import get_return_nb
from vectorbt.utils.math_ import add_nb, is_close_nb, is_close_or_less_nb, is_less_nb

from vectorflow.backtest.metrics import METRICS

MIN_SIZE = 1e-8  # vectorbt's default `min_size`
ABS_TOL = 1e-12  # vectorbt.utils.math_.abs_tol: add_nb rounds sums this close to 0 to 0
BLOCK_STATS = 5  # count, sum, sum of squares, sum of squared losses, product of (1 + r)

# the state of one column, in a float array (numba helpers mutate it in place)
CASH, FREE, POS, DEBT, VALP, SL_PRICE, SL_STOP, TP_PRICE, TP_STOP = range(9)
P_CASH, P_ASSETS, ORDERS = range(9, 12)  # vectorbt's total_profit_nb, from the orders
T_OPEN, T_DIR, T_SIZE, T_GROSS, T_FEES = range(12, 17)  # the open exit trade
T_CLOSED, T_WINS, T_WIN_PNL, T_LOSS_PNL, T_HAS_WIN, T_HAS_LOSS = range(17, 23)
STATE = 23
_COL = {name: i for i, name in enumerate(METRICS)}
M_TOTAL, M_BENCH, M_SHARPE, M_SORTINO, M_CALMAR, M_MDD = (
    _COL[k] for k in ("total_return", "benchmark_return", "sharpe_ratio", "sortino_ratio",
                      "calmar_ratio", "max_drawdown")
)  # fmt: skip
M_WIN, M_PF, M_EXPOSURE, M_TRADES, M_CLOSED = (
    _COL[k] for k in ("win_rate", "profit_factor", "exposure", "trades", "closed_trades")
)


@njit(cache=True)
def _book_closed(s, pnl):
    """Count one closed exit trade and its PnL as vectorbt's win rate and profit factor do."""
    s[T_CLOSED] += 1
    if pnl > 0:
        s[T_WINS] += 1
        s[T_WIN_PNL] += pnl
        s[T_HAS_WIN] = 1
    elif pnl < 0:
        s[T_LOSS_PNL] += pnl
        s[T_HAS_LOSS] = 1


@njit(cache=True)
def _book_trade(s, side, size, price, fees):
    """One filled order into the exit-trade book (vectorbt's get_exit_trades_nb, one column)."""
    if s[T_OPEN] == 0:
        s[T_OPEN] = 1
        s[T_DIR] = TradeDirection.Long if side == OrderSide.Buy else TradeDirection.Short
        s[T_SIZE], s[T_GROSS], s[T_FEES] = 0.0, 0.0, 0.0
    direction = int(s[T_DIR])
    adds = (direction == TradeDirection.Long) == (side == OrderSide.Buy)
    if adds:
        s[T_SIZE] += size
        s[T_GROSS] += size * price
        s[T_FEES] += fees
    elif is_close_or_less_nb(size, s[T_SIZE]):
        whole = is_close_nb(size, s[T_SIZE])
        exit_size = s[T_SIZE] if whole else size
        entry_price = s[T_GROSS] / s[T_SIZE]
        entry_fees = exit_size / s[T_SIZE] * s[T_FEES]
        pnl, _ = get_trade_stats_nb(exit_size, entry_price, entry_fees, price, fees, direction)
        _book_closed(s, pnl)
        if whole:
            s[T_OPEN] = 0
        else:
            fraction = (s[T_SIZE] - size) / s[T_SIZE]
            s[T_SIZE] *= fraction
            s[T_GROSS] *= fraction
            s[T_FEES] *= fraction
    else:  # reversed: close the trade, open the opposite one with the rest
        closed_size = s[T_SIZE]
        closed_fees = closed_size / size * fees
        entry_price = s[T_GROSS] / s[T_SIZE]
        entry_fees = closed_size / s[T_SIZE] * s[T_FEES]
        pnl, _ = get_trade_stats_nb(closed_size, entry_price, entry_fees, price, closed_fees,
                                    direction)  # fmt: skip
        _book_closed(s, pnl)
        s[T_SIZE] = size - closed_size
        s[T_GROSS] = s[T_SIZE] * price
        s[T_FEES] = fees - closed_fees
        s[T_DIR] = TradeDirection.Short if direction == TradeDirection.Long else TradeDirection.Long


@njit(cache=True)
def _stop_price(s, o, h, lo, c):
    """The stop-loss (first) or take-profit price hit on this bar, else NaN."""
    if np.isnan(o):
        o = c
    if np.isnan(lo):
        lo = min(o, c)
    if np.isnan(h):
        h = max(o, c)
    price = np.nan
    if not np.isnan(s[SL_STOP]):
        price = get_stop_price_nb(s[POS], s[SL_PRICE], s[SL_STOP], o, lo, h, True)
    if np.isnan(price) and not np.isnan(s[TP_STOP]):
        price = get_stop_price_nb(s[POS], s[TP_PRICE], s[TP_STOP], o, lo, h, False)
    return price


@njit(cache=True)
def _signals(position, long_in, long_out, short_in, short_out):
    """from_signals' conflict resolution with its defaults (ignore conflicts, reverse-reduce)."""
    accumulate = AccumulationMode.Disabled
    if long_in or short_in:
        long_in, long_out = resolve_signal_conflict_nb(position, long_in, long_out,
                                                       Direction.LongOnly, ConflictMode.Ignore)
        short_in, short_out = resolve_signal_conflict_nb(position, short_in, short_out,
                                                         Direction.ShortOnly, ConflictMode.Ignore)
        long_in, short_in = resolve_dir_conflict_nb(position, long_in, short_in,
                                                    DirectionConflictMode.Ignore)
        long_in, long_out, short_in, short_out, accumulate = resolve_opposite_entry_nb(
            position, long_in, long_out, short_in, short_out, OppositeEntryMode.ReverseReduce,
            accumulate,
        )
    return long_in, long_out, short_in, short_out, accumulate


@njit(cache=True)
def _fill(s, i, size, size_type, direction, price, fees, slippage, close_i, sl, tp):
    """Execute one order like simulate_from_signals_nb; book it in the ledgers; reset stops."""
    if direction == Direction.ShortOnly:
        size = -size  # as simulate_from_signals_nb hands it to process_order_nb
    order = order_nb(size, price, size_type, direction, fees, 0.0, slippage, MIN_SIZE, np.inf,
                     np.nan, 0.0, False, True, False, False)  # fmt: skip
    value = s[CASH] + s[POS] * s[VALP] if s[POS] != 0 else s[CASH]
    before = s[POS]
    state = ProcessOrderState(s[CASH], s[POS], s[DEBT], s[FREE], s[VALP], value, 0, 0)
    done, result = execute_order_nb(state, order)
    if result.status != OrderStatus.Filled:
        return 0.0, 0.0
    s[CASH], s[POS], s[DEBT], s[FREE] = done.cash, done.position, done.debt, done.free_cash
    s[ORDERS] += 1
    buy = result.side == OrderSide.Buy
    units = result.size if buy else -result.size
    s[P_ASSETS] = add_nb(s[P_ASSETS], units)
    if buy:
        s[P_CASH] = add_nb(s[P_CASH], -(result.size * result.price + result.fees))
    else:
        s[P_CASH] = add_nb(s[P_CASH], result.size * result.price - result.fees)
    _book_trade(s, result.side, result.size, result.price, result.fees)
    if s[POS] == 0:
        s[SL_PRICE], s[SL_STOP], s[TP_PRICE], s[TP_STOP] = np.nan, np.nan, np.nan, np.nan
    elif before == 0 or np.sign(s[POS]) != np.sign(before):
        s[SL_PRICE], s[SL_STOP], s[TP_PRICE], s[TP_STOP] = close_i, sl, close_i, tp
    return add_nb(0.0, units), add_nb(0.0, -units * result.price - result.fees)


LONG_IN, LONG_OUT, SHORT_IN, SHORT_OUT = 1, 2, 4, 8  # bits of a packed signal code


@njit(cache=True)
def _bar(s, i, code, opens, highs, lows, closes, use_stops, fees, slippage, sl, tp):
    """One bar of one column: its signals or a stop, maybe an order; (asset flow, cash flow)."""
    price, slip = closes[i], slippage
    s[VALP] = price
    stop = np.nan
    if use_stops and (not np.isnan(s[SL_STOP]) or not np.isnan(s[TP_STOP])):
        stop = _stop_price(s, opens[i], highs[i], lows[i], closes[i])
    if not np.isnan(stop):
        long_in, long_out, short_in, short_out, accumulate = generate_stop_signal_nb(
            s[POS], StopExitMode.Close, AccumulationMode.Disabled
        )
        price, slip = resolve_stop_price_and_slippage_nb(stop, price, closes[i], slippage,
                                                         StopExitPrice.StopLimit)  # fmt: skip
    else:
        long_in, long_out, short_in, short_out, accumulate = _signals(
            s[POS], code & LONG_IN != 0, code & LONG_OUT != 0, code & SHORT_IN != 0,
            code & SHORT_OUT != 0,
        )
    size, size_type, direction = signals_to_size_nb(s[POS], long_in, long_out, short_in,
                                                    short_out, np.inf, SizeType.Amount,
                                                    accumulate, s[VALP])  # fmt: skip
    if size == 0:
        return 0.0, 0.0
    return _fill(s, i, size, size_type, direction, price, fees, slip, closes[i], sl, tp)


@njit(cache=True)
def _plus(a, b):
    """vectorbt's add_nb, quick when b is zero (most bars)."""
    if b == 0.0:
        return 0.0 if abs(a) <= ABS_TOL else a
    return add_nb(a, b)


@njit(cache=True)
def _trade_metrics(s, out):
    """Win rate, profit factor and trade counts as vectorbt's (closed) exit trades give them."""
    closed = s[T_CLOSED]
    out[M_WIN] = s[T_WINS] / closed if closed > 0 else np.nan
    out[M_PF] = np.nan
    if closed > 0:
        win = s[T_WIN_PNL] if s[T_HAS_WIN] else 0.0
        loss = abs(s[T_LOSS_PNL]) if s[T_HAS_LOSS] else 0.0
        if loss != 0:
            out[M_PF] = win / loss
        elif win > 0:
            out[M_PF] = np.inf
    still_open = s[T_OPEN] == 1 and is_less_nb(-s[T_SIZE], 0.0)
    out[M_TRADES] = closed + (1 if still_open else 0)
    out[M_CLOSED] = closed


@njit(cache=True)
def _return_metrics(returns, ann_factor, block_of_bar, blocks, out):
    """Sharpe, Sortino, Calmar and max drawdown exactly as vectorbt's returns kernels compute
    them (the same sums in the same order), in one pass, with the per-block sums beside."""
    n = returns.shape[0]
    total, down, growth, peak, worst = 0.0, 0.0, 1.0, np.nan, np.inf
    for i in range(n):
        r = returns[i]
        total += r
        d = r if r <= 0 else 0.0
        down += d * d
        growth *= r + 1.0
        level = growth * 100.0
        if np.isnan(peak) or level > peak:
            peak = level
        worst = min(worst, level / peak - 1)
        b = block_of_bar[i]
        if b >= 0:
            blocks[b, 0] += 1.0
            blocks[b, 1] += r
            blocks[b, 2] += r * r
            blocks[b, 3] += d * d
            blocks[b, 4] *= r + 1.0
    mean = total / n
    ssd = 0.0
    for i in range(n):
        dev = returns[i] - mean
        ssd += dev * dev
    std = np.sqrt(ssd / n * n / (n - 1)) if n > 1 else np.nan
    downside = np.sqrt(down / n) * np.sqrt(ann_factor)
    sharpe = np.inf if std == 0 else mean / std * np.sqrt(ann_factor)
    out[M_SHARPE] = np.nan if n < 2 else sharpe
    sortino = np.inf if downside == 0 else mean * ann_factor / downside
    out[M_SORTINO] = np.nan if n < 2 else sortino
    out[M_MDD] = worst
    out[M_CALMAR] = np.nan if worst == 0 else (growth ** (ann_factor / n) - 1) / abs(worst)


@njit(cache=True)
def _reset(s, init_cash):
    s[:] = 0.0
    s[CASH], s[FREE] = init_cash, init_cash
    s[VALP : TP_STOP + 1] = np.nan  # no valuation price yet, no stops


@njit(cache=True, nogil=True)
def simulate_grid_nb(opens, highs, lows, closes, codes, sl_stop, tp_stop, use_stops, fees,
                     slippage, init_cash, ann_factor, block_of_bar, metrics_out,
                     blocks_out):  # fmt: skip
    """Simulate and measure every set: `codes` holds one row of packed signals per set."""
    n = closes.shape[0]
    returns = np.empty(n, dtype=np.float64)
    bench = get_return_nb(init_cash, closes[n - 1] / closes[0] * init_cash)
    s = np.empty(STATE, dtype=np.float64)
    for col in range(codes.shape[0]):
        _reset(s, init_cash)
        row = codes[col]
        cash, assets, before, held = init_cash, 0.0, init_cash, 0
        for i in range(n):
            flow_assets, flow_cash = 0.0, 0.0
            if row[i] != 0 or (use_stops and s[POS] != 0):
                flow_assets, flow_cash = _bar(s, i, row[i], opens, highs, lows, closes,
                                              use_stops, fees, slippage, sl_stop[col],
                                              tp_stop[col])  # fmt: skip
            assets = _plus(assets, flow_assets)  # vectorbt's value(): cash + close x assets,
            cash = _plus(cash, flow_cash)  # both rebuilt from the order records
            value = cash + closes[i] * assets
            returns[i] = get_return_nb(before, value)
            before = value
            if assets != 0:
                held += 1
        out = metrics_out[col]
        profit = s[P_CASH] + s[P_ASSETS] * closes[n - 1] if s[ORDERS] > 0 else 0.0
        out[M_TOTAL] = profit / init_cash
        out[M_BENCH] = bench
        out[M_EXPOSURE] = held / n
        _trade_metrics(s, out)
        _return_metrics(returns, ann_factor, block_of_bar, blocks_out[col], out)


@njit(cache=True, nogil=True)
def crossed_above_columns_nb(a, a_col, b, b_col):
    """vectorbt's crossover of a[:, a_col[j]] above b[:, b_col[j]] for every j (bars x j): each
    indicator column computed once, shared by every set that uses it."""
    out = np.empty((a.shape[0], a_col.shape[0]), dtype=np.bool_)
    for j in range(a_col.shape[0]):
        out[:, j] = crossed_above_1d_nb(a[:, a_col[j]], b[:, b_col[j]], 0)
    return out


def block_index(n_bars: int, blocks: int) -> np.ndarray:
    """The block (0..blocks-1) of every bar, -1 for the oldest n_bars % blocks bars left out;
    all -1 when a block would hold fewer than two bars."""
    size = n_bars // blocks if blocks > 0 else 0
    out = np.full(n_bars, -1, dtype=np.int64)
    if size < 2:
        return out
    skip = n_bars - size * blocks
    out[skip:] = np.arange(size * blocks) // size
    return out


def pack_signals(signals, both_sides: bool) -> np.ndarray:
    """The signal arrays (bars x sets) as one uint8 code per bar, one contiguous row per set."""
    codes = np.asarray(signals.entries, dtype=np.uint8) * np.uint8(LONG_IN)
    codes |= np.asarray(signals.exits, dtype=np.uint8) * np.uint8(LONG_OUT)
    if both_sides and signals.short_entries is not None:
        codes |= np.asarray(signals.short_entries, dtype=np.uint8) * np.uint8(SHORT_IN)
        codes |= np.asarray(signals.short_exits, dtype=np.uint8) * np.uint8(SHORT_OUT)
    return np.ascontiguousarray(codes.T)


def _stop_array(values, k: int, use_stops: bool) -> np.ndarray:
    if values is None or not use_stops:
        return np.full(k, np.nan)
    return np.where(np.isnan(values), np.inf, values).astype(np.float64)  # as simulate() does


def simulate_grid(bars, signals, settings, *, sl_stop=None, tp_stop=None, blocks: int = 16):
    """(metrics (sets x METRICS), block sums (sets x blocks x BLOCK_STATS)) of the signal columns:
    the metrics `metrics.raw_metrics(portfolio.simulate(...))` gives for the same arguments."""
    n, k = signals.entries.shape
    use_stops = any(v is not None and not np.isnan(v).all() for v in (sl_stop, tp_stop))
    ohlc = [np.ascontiguousarray(bars[c].to_numpy(np.float64)) for c in ("open", "high", "low",
                                                                         "close")]  # fmt: skip
    metrics = np.empty((k, len(METRICS)), dtype=np.float64)
    sums = np.zeros((k, max(blocks, 1), BLOCK_STATS), dtype=np.float64)
    sums[:, :, 4] = 1.0  # growth factors multiply
    simulate_grid_nb(*ohlc, pack_signals(signals, settings.both_sides),
                     _stop_array(sl_stop, k, use_stops), _stop_array(tp_stop, k, use_stops),
                     use_stops, float(settings.fees), float(settings.slippage),
                     float(settings.init_cash), settings.ann_factor, block_index(n, blocks),
                     metrics, sums)  # fmt: skip
    return metrics, sums
