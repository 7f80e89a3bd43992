"""The payload's `cross_exchange` section: the catalog's `market_snapshot`, computed as of `as_of`.

The same definitions as the view (vectorflow.lake.market_views), over the candles closed at or
before `as_of` only: every venue (exchange, market) listing the same base/quote prices at the
close of its freshest stored timeframe (the finer one on a tie); `exchange_spread_bps` is
(max − min) / mean of the two extremes across the exchanges of the series' market,
`basis_bps` a perpetual's close over its exchange's spot close − 1, `volume_share_24h` the
venue's quote volume over the 24 h to its price time, as a share of every venue's. A venue whose
price is more than two of the series' timeframes old at `as_of` is left out; with no other
exchange left, the section says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vectorflow.lake.schema import CANDLES
from vectorflow.lake.storage import Storage
from vectorflow.playbooks.reads import partition_folders, read_rows, symbol_id
from vectorflow.timeframes import TIMEFRAMES, ms_to_iso, timeframe_ms
from vectorflow.units import Unit

DAY_MS = 86_400_000
SOURCE = "candles (as market_snapshot)"


@dataclass(frozen=True)
class _Venue:
    """One venue's prices at every as_of: its freshest timeframe's last close and 24 h volume."""

    exchange: str
    market: str
    price_time: np.ndarray  # close time of the chosen candle (-1: none)
    close: np.ndarray
    volume: np.ndarray  # NaN when no quote volume is stored


def _symbol(unit: Unit, market: str) -> str:
    base_quote = unit.symbol.split(":")[0]
    return base_quote if market == "spot" else f"{base_quote}:{base_quote.split('/')[1]}"


def _finest_first(folders: list) -> list:
    known = [f for f in folders if f.name.split("=", 1)[1] in TIMEFRAMES]
    return sorted(known, key=lambda f: timeframe_ms(f.name.split("=", 1)[1]))


def _timeframe_prices(frame, step: int, at: np.ndarray) -> tuple[np.ndarray, ...]:
    """(price time, close, 24 h quote volume) at each as_of from one timeframe's candles."""
    opens = frame["open_time"].to_numpy(np.int64)
    close = frame["close"].to_numpy(float)
    quote = frame["quote_volume"].to_numpy(float)
    known = np.r_[0, np.cumsum(~np.isnan(quote))]
    summed = np.r_[0.0, np.cumsum(np.nan_to_num(quote))]
    last = np.searchsorted(opens + step, at, side="right") - 1
    ok = last >= 0
    safe = np.maximum(last, 0)
    price_time = np.where(ok, opens[safe] + step, -1)
    first = np.searchsorted(opens, price_time - DAY_MS, side="left")
    count = known[safe + 1] - known[first]
    volume = np.where(ok & (count > 0), summed[safe + 1] - summed[first], np.nan)
    return price_time, np.where(ok, close[safe], np.nan), volume


def _venue(lake: Storage, unit: Unit, exchange: str, market: str, at: np.ndarray) -> _Venue:
    values = {"exchange": exchange, "market": market, "symbol_id": symbol_id(unit.symbol)}
    best = (np.full(len(at), -1, np.int64), np.full(len(at), np.nan), np.full(len(at), np.nan))
    start = int(at[0]) - 2 * DAY_MS - 2 * timeframe_ms(unit.timeframe)
    for folder in _finest_first(partition_folders(lake, CANDLES, values)):
        timeframe = folder.name.split("=", 1)[1]
        step = timeframe_ms(timeframe)
        frame = read_rows(
            lake, CANDLES, [folder], _symbol(unit, market), start - step, int(at[-1]),
            columns=["close", "quote_volume"],
        )  # fmt: skip
        if frame.empty:
            continue
        found = _timeframe_prices(frame, step, at)
        # freshest wins; a tie keeps the finer timeframe (folders come finest first)
        better = found[0] > best[0]
        best = tuple(np.where(better, new, old) for new, old in zip(found, best, strict=True))
    return _Venue(exchange, market, *best)


def _venues(lake: Storage, unit: Unit, at: np.ndarray) -> list[_Venue]:
    values = {"symbol_id": symbol_id(unit.symbol)}
    pairs = sorted(
        {
            (f.parent.parent.parent.name.split("=", 1)[1], f.parent.parent.name.split("=", 1)[1])
            for f in partition_folders(lake, CANDLES, values)
        }
    )
    return [_venue(lake, unit, exchange, market, at) for exchange, market in pairs]


def _section(unit: Unit, venues: list[_Venue], i: int, max_age: int, as_of: int) -> dict:
    fresh = [v for v in venues if v.price_time[i] >= 0 and as_of - v.price_time[i] <= max_age]
    mine = [v for v in fresh if (v.exchange, v.market) == (unit.exchange, unit.market)]
    exchanges = {v.exchange for v in fresh}
    if not mine or len(exchanges) < 2:
        return {
            "source": SOURCE,
            "unavailable": f"no other exchange has {unit.symbol.split(':')[0]} candles within "
            f"{max_age // 60_000} minutes",
        }
    me = mine[0]
    same_market = [v.close[i] for v in fresh if v.market == unit.market]
    high, low = max(same_market), min(same_market)
    volumes = [v.volume[i] for v in fresh if not np.isnan(v.volume[i])]
    spot = [v for v in fresh if v.exchange == unit.exchange and v.market == "spot"]
    section = {
        "time": ms_to_iso(as_of),
        "source": SOURCE,
        "exchange_spread_bps": (high - low) / ((high + low) / 2) * 1e4,
        "basis_bps": (me.close[i] / spot[0].close[i] - 1) * 1e4
        if unit.market == "linear" and spot
        else None,
        "quote_volume_24h": None if np.isnan(me.volume[i]) else float(me.volume[i]),
        "volume_share_24h": None
        if np.isnan(me.volume[i]) or not sum(volumes)
        else float(me.volume[i] / sum(volumes)),
        "venues": [
            {
                "exchange": v.exchange,
                "market": v.market,
                "close": float(v.close[i]),
                "price_time": ms_to_iso(int(v.price_time[i])),
            }
            for v in fresh
            if v is not me
        ],
    }
    return section


def cross_sections(lake: Storage, unit: Unit, as_ofs: list[int]) -> dict[int, dict]:
    """The cross_exchange section of each as_of."""
    at = np.array(sorted(set(as_ofs)), dtype=np.int64)
    if not len(at):
        return {}
    venues = _venues(lake, unit, at)
    max_age = 2 * timeframe_ms(unit.timeframe)
    return {int(a): _section(unit, venues, i, max_age, int(a)) for i, a in enumerate(at)}
