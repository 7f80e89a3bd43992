"""Candle series of the simulator: a lazily generated 1m base per (venue, symbol), resampled.

Everything is anchored when the store is created: the whole-week shift of the bundled real
history, the listing times and therefore every candle are fixed then, so moving the clock later
only reveals (or hides) candles and never rewrites history.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from vectorflow.sim import synth
from vectorflow.sim.synth import BAR_MS, DAY_MS, MIN_MS
from vectorflow.sim.venues import REFERENCE, SYMBOLS, SymbolSpec
from vectorflow.timeframes import floor_ms, timeframe_ms

log = logging.getLogger(__name__)

WEEK_MS = 7 * DAY_MS
MAIN_LISTING_DAYS = 400
RECENT_LISTING_DAYS = 10
RECENT_LISTING_HOUR = 8
COLUMNS = ("o", "h", "l", "c", "v", "q", "n", "tb", "tq")
SUMMED = ("v", "q", "n", "tb", "tq")

# (mean basis bps, slow wander bps, per-minute noise bps, volume scale, average trade USD)
VENUE_STYLES: dict[tuple[str, str], tuple[float, float, float, float, float]] = {
    ("binance", "linear"): (0.0, 0.0, 0.0, 1.0, 3000.0),
    ("binance", "spot"): (-2.5, 2.0, 0.6, 0.3, 800.0),
    ("bybit", "linear"): (0.5, 1.5, 0.8, 0.45, 2500.0),
    ("bybit", "spot"): (-3.0, 2.0, 0.9, 0.1, 600.0),
}


class RefPath:
    """One symbol's reference-venue (Binance USDⓈ-M) 1m path, kept as consecutive chunks."""

    def __init__(
        self, spec: SymbolSpec, tpl: synth.Bundled, seed: int, listing_ms: int, anchor_ms: int
    ) -> None:
        grid = spec.grids[REFERENCE]
        self.spec, self.tpl, self.seed = spec, tpl, seed
        self.style = synth.PathStyle(
            float(grid.tick), float(grid.step), spec.vol_mult, spec.notional
        )
        self.start_ms = listing_ms
        self.chunks: list[dict[str, np.ndarray]] = []
        self.starts: list[int] = []
        self.end_ms = listing_ms
        self._append(self._history(listing_ms, anchor_ms))

    def _history(self, listing_ms: int, anchor_ms: int) -> dict[str, np.ndarray]:
        """1m candles from the listing to the anchor (for BTC: generated, then the real candles)."""
        tpl, style, sid = self.tpl, self.style, self.spec.id
        real = None
        if self.spec.base == "BTC":
            assert (style.tick, style.step) == (synth.BUNDLED_TICK, synth.BUNDLED_STEP)
            bars = {k: getattr(tpl, k) for k in ("o", "h", "l", "c", "v")}
            real = synth.expand_to_minutes(bars, synth.rng_for(self.seed, sid, "real"))
            back_end, close = anchor_ms - (tpl.end_ms - tpl.start_ms), int(tpl.o[0])
            self.anchor_log = float(np.log(tpl.c[-1] * style.tick))
        else:
            back_end = anchor_ms
            close = max(round(self.spec.level / style.tick), 1)
            self.anchor_log = float(np.log(close * style.tick))
        if listing_ms >= back_end:
            raise ValueError(f"{sid}: listing time must precede the anchor time")
        n_back = -(-(back_end - listing_ms) // BAR_MS)
        rng = synth.rng_for(self.seed, sid, "back")
        back_log = float(np.log(close * style.tick))
        bars = synth.backward_bars(tpl, rng, back_end, n_back, close, back_log, style)
        mins = synth.expand_to_minutes(bars, rng)
        drop = (listing_ms - (back_end - n_back * BAR_MS)) // MIN_MS
        parts = [{k: a[drop:] for k, a in mins.items()}] + ([real] if real else [])
        return {k: np.concatenate([p[k] for p in parts]) for k in mins}

    def _append(self, chunk: dict[str, np.ndarray]) -> None:
        self.chunks.append(chunk)
        self.starts.append(self.end_ms)
        self.end_ms += len(chunk["o"]) * MIN_MS

    def ensure(self, until_ms: int) -> None:
        """Generate whole days forward until the path covers `until_ms` (exclusive)."""
        while self.end_ms < until_ms:
            k = len(self.chunks) - 1
            rng = synth.rng_for(self.seed, self.spec.id, "fwd", k)
            last_close = int(self.chunks[-1]["c"][-1])
            bars = synth.forward_bars(
                self.tpl,
                rng,
                self.end_ms,
                synth.BARS_PER_DAY,
                last_close,
                self.anchor_log,
                self.style,
            )
            self._append(synth.expand_to_minutes(bars, rng))


class Series:
    """One venue's candles for one symbol: a 1m base (integer ticks/steps) and cached resamples."""

    def __init__(self, venue: tuple[str, str], spec: SymbolSpec, path: RefPath, seed: int) -> None:
        grid = spec.grids[venue]
        self.venue, self.spec, self.path, self.seed = venue, spec, path, seed
        self.tick, self.step = float(grid.tick), float(grid.step)
        basis, wander, noise, volume, trade = VENUE_STYLES[venue]
        self.style = synth.VenueStyle(self.tick, self.step, basis, wander, noise, volume, trade)
        self.phases = synth.rng_for(seed, *venue, spec.id, "basis").uniform(0, 2 * np.pi, 3)
        self.t0 = path.start_ms
        self.size = 0  # minutes in the base
        self._buf: dict[str, np.ndarray] = {}
        self._parts = 0  # reference chunks already derived
        self._tables: dict[str, tuple[int, int, dict[str, np.ndarray]]] = {}

    @property
    def base(self) -> dict[str, np.ndarray]:
        """The 1m columns from the listing to the end of the generated data (views)."""
        return {k: a[: self.size] for k, a in self._buf.items()}

    def ensure(self, until_ms: int) -> None:
        """Make the 1m base cover `until_ms`, deriving any new reference chunks."""
        self.path.ensure(until_ms)
        if self._parts == len(self.path.chunks):
            return
        while self._parts < len(self.path.chunks):
            self._put(self._derive(self._parts))
            self._parts += 1
        self._tables.clear()

    def _put(self, part: dict[str, np.ndarray]) -> None:
        """Append derived minutes, growing the buffers geometrically (extensions are frequent)."""
        n = len(part["o"])
        cap = len(next(iter(self._buf.values()))) if self._buf else 0
        if self.size + n > cap:
            new_cap = self.size + n
            if cap:
                new_cap = max(new_cap, cap + cap // 4, self.size + 30 * 1440)
            for k in COLUMNS:
                grown = np.empty(new_cap, dtype=part[k].dtype)
                if cap:
                    grown[: self.size] = self._buf[k][: self.size]
                self._buf[k] = grown
        for k in COLUMNS:
            self._buf[k][self.size : self.size + n] = part[k]
        self.size += n

    def _derive(self, k: int) -> dict[str, np.ndarray]:
        ref = self.path.chunks[k]
        rng = synth.rng_for(self.seed, *self.venue, self.spec.id, k)
        if self.venue == REFERENCE:
            bars = ref
        else:
            times = self.path.starts[k] + np.arange(len(ref["o"]), dtype=np.int64) * MIN_MS
            ps = self.path.style
            bars = synth.derive_venue(ref, times, ps.tick, ps.step, self.style, self.phases, rng)
        return synth.add_extras(bars, self.tick, self.step, self.style.avg_trade_usd, rng)

    def table(self, timeframe: str) -> tuple[int, int, dict[str, np.ndarray]]:
        """(first open ms, step ms, columns) of the whole base resampled to `timeframe`."""
        if timeframe == "1m":
            return self.t0, MIN_MS, self.base
        if timeframe not in self._tables:
            self._tables[timeframe] = resample(self.base, self.t0, timeframe)
        return self._tables[timeframe]

    def window(
        self,
        timeframe: str,
        now: int,
        lo: int | None,
        hi: int | None,
        limit: int,
        oldest_first: bool,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Candles with lo <= open <= min(hi, now): the first `limit` or the last `limit` of them.

        The candle containing `now` carries partial values, as on a live exchange.
        """
        hi = now if hi is None else min(hi, now)
        if now < self.t0:
            return np.empty(0, np.int64), {k: np.empty(0) for k in COLUMNS}
        self.ensure(now + MIN_MS)
        b0, step, tab = self.table(timeframe)
        i_lo = 0 if lo is None else max(0, -(-(lo - b0) // step))
        i_hi = min(len(tab["o"]) - 1, (hi - b0) // step)
        if i_hi >= i_lo:
            if oldest_first:
                i_hi = min(i_hi, i_lo + limit - 1)
            else:
                i_lo = max(i_lo, i_hi - limit + 1)
        else:
            i_hi = i_lo - 1
        times = b0 + np.arange(i_lo, i_hi + 1, dtype=np.int64) * step
        rows = {k: tab[k][i_lo : i_hi + 1] for k in COLUMNS}
        if len(times) and times[-1] <= now < times[-1] + step:
            partial = self.partial(int(times[-1]), now)
            rows = {k: rows[k].copy() for k in COLUMNS}
            for k in COLUMNS:
                rows[k][-1] = partial[k]
        return times, rows

    def partial(self, start: int, now: int) -> dict[str, float | int]:
        """The still-open candle from `start` to `now`; the 1m candle containing now is partial."""
        base = self.base
        i0 = max(start - self.t0, 0) // MIN_MS
        im = (now - self.t0) // MIN_MS
        frac = ((now - self.t0) % MIN_MS) / MIN_MS
        o, h, l, c = (int(base[k][im]) for k in ("o", "h", "l", "c"))
        cp = round(o + (c - o) * frac)
        hp = max(o, cp) + int((h - max(o, c)) * frac)
        lp = min(o, cp) - int((min(o, c) - l) * frac)
        vp, tbp = int(base["v"][im] * frac), int(base["tb"][im] * frac)
        np_ = max(int(base["n"][im] * frac), 1) if vp > 0 else 0
        vwap = (hp + lp + cp) / 3.0 * self.tick
        full = slice(i0, im)
        out = {
            "o": int(base["o"][i0]) if i0 < im else o,
            "h": max(int(base["h"][full].max()), hp) if i0 < im else hp,
            "l": min(int(base["l"][full].min()), lp) if i0 < im else lp,
            "c": cp,
            "v": int(base["v"][full].sum()) + vp,
            "q": float(base["q"][full].sum()) + vp * self.step * vwap,
            "n": int(base["n"][full].sum()) + np_,
            "tb": int(base["tb"][full].sum()) + tbp,
            "tq": float(base["tq"][full].sum()) + tbp * self.step * vwap,
        }
        return out


def resample(
    base: dict[str, np.ndarray], t0: int, timeframe: str
) -> tuple[int, int, dict[str, np.ndarray]]:
    """Aggregate consecutive 1m candles from t0 into `timeframe` candles (weeks from Monday)."""
    step = timeframe_ms(timeframe)
    per = step // MIN_MS
    b0 = floor_ms(t0, timeframe)
    offset = (t0 - b0) // MIN_MS
    n = len(base["o"])
    idx = np.concatenate(([0], np.arange(per - offset, n, per))).astype(np.int64)
    ends = np.concatenate((idx[1:], [n])) - 1
    out = {
        "o": base["o"][idx],
        "h": np.maximum.reduceat(base["h"], idx),
        "l": np.minimum.reduceat(base["l"], idx),
        "c": base["c"][ends],
    }
    for k in SUMMED:
        out[k] = np.add.reduceat(base[k], idx)
    return b0, step, out


class History:
    """Every candle series of one simulator, anchored at the clock value it was created with."""

    def __init__(self, seed: int, now_ms: int) -> None:
        self.seed = seed
        self.tpl = synth.load_bundled()
        self.shift_ms = (now_ms - self.tpl.end_ms) // WEEK_MS * WEEK_MS
        self.anchor_ms = self.tpl.end_ms + self.shift_ms  # end of the shifted real history
        main = floor_ms(now_ms - MAIN_LISTING_DAYS * DAY_MS, "1d")
        recent = floor_ms(now_ms - RECENT_LISTING_DAYS * DAY_MS, "1d")
        recent += RECENT_LISTING_HOUR * 3_600_000
        self.listing = {sid: recent if s.recent else main for sid, s in SYMBOLS.items()}
        self._paths: dict[str, RefPath] = {}
        self._series: dict[tuple[str, str, str], Series] = {}
        self.lock = threading.RLock()

    def series(self, exchange: str, market: str, symbol_id: str) -> Series | None:
        """The series of a listed market, created on first use; None if the venue lacks it."""
        spec = SYMBOLS.get(symbol_id)
        if spec is None or (exchange, market) not in spec.grids:
            return None
        key = (exchange, market, symbol_id)
        with self.lock:
            if key not in self._series:
                if symbol_id not in self._paths:
                    self._paths[symbol_id] = RefPath(
                        spec, self.tpl, self.seed, self.listing[symbol_id], self.anchor_ms
                    )
                path = self._paths[symbol_id]
                self._series[key] = Series((exchange, market), spec, path, self.seed)
                log.debug("generated series %s %s %s", exchange, market, symbol_id)
            return self._series[key]

    def window(
        self,
        exchange: str,
        market: str,
        symbol_id: str,
        timeframe: str,
        now: int,
        *,
        lo: int | None,
        hi: int | None,
        limit: int,
        oldest_first: bool,
    ) -> tuple[np.ndarray, dict[str, np.ndarray], Series] | None:
        """Series.window for a listed market under the store's lock; None if it is not listed."""
        series = self.series(exchange, market, symbol_id)
        if series is None:
            return None
        with self.lock:
            times, rows = series.window(timeframe, now, lo, hi, limit, oldest_first)
        return times, rows, series

    def bundled_range(self, timeframe: str) -> tuple[int, int]:
        """First and last open time of the `timeframe` candles built only from the real candles."""
        step = timeframe_ms(timeframe)
        start, end = self.tpl.start_ms + self.shift_ms, self.anchor_ms
        first = floor_ms(start, timeframe)
        if first < start:
            first += step
        last = floor_ms(end - step, timeframe)
        if last < first:
            raise ValueError(f"the bundled history holds no whole {timeframe} candle")
        return first, last
