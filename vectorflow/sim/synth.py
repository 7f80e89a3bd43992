"""Numpy building blocks for simulated candles: bootstrapped 5m bars, 1m expansion, venues.

Prices are integer ticks and volumes integer lot steps throughout, so resampling sums are exact and
every candle can be checked with integer comparisons.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pyarrow.parquet as pq

BAR_MS = 300_000  # the bundled candles and all generated bars are 5 minutes
MIN_MS = 60_000
DAY_MS = 86_400_000
BARS_PER_DAY = DAY_MS // BAR_MS
BLOCK = 48  # bootstrap block: 4 hours of 5m bars, taken at the same time of day
HALF_LIFE_DAYS = 30.0  # pull of the generated log price back to its anchor level
KAPPA = 1.0 - 0.5 ** (1.0 / HALF_LIFE_DAYS)


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """A numpy Generator determined by the seed and a path of string/int keys."""
    words = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key) & 0xFFFFFFFF)
    return np.random.default_rng(np.random.SeedSequence(words))


@dataclass(frozen=True)
class Bundled:
    """The bundled real 5m candles (Binance USDⓈ-M BTCUSDT) as ticks/steps, plus templates."""

    open_ms: np.ndarray  # int64 open times, unshifted
    o: np.ndarray  # int64 ticks of 0.1
    h: np.ndarray
    l: np.ndarray
    c: np.ndarray
    v: np.ndarray  # int64 steps of 0.001 BTC
    body: np.ndarray  # log(close/open), demeaned
    up: np.ndarray  # log(high/max(open, close)) >= 0
    down: np.ndarray  # log(min(open, close)/low) >= 0
    quote: np.ndarray  # volume x typical price, USD
    phase0: int  # time-of-day index (in 5m bars) of the first candle

    @property
    def start_ms(self) -> int:
        """Open time of the first bundled candle."""
        return int(self.open_ms[0])

    @property
    def end_ms(self) -> int:
        """Close time (exclusive) of the last bundled candle."""
        return int(self.open_ms[-1]) + BAR_MS


BUNDLED_TICK = 0.1
BUNDLED_STEP = 0.001


def load_bundled() -> Bundled:
    """Read data/btc_usdt_5m.parquet from the package and derive the bootstrap templates."""
    path = resources.files("vectorflow.sim") / "data" / "btc_usdt_5m.parquet"
    with resources.as_file(path) as real_path:
        table = pq.read_table(real_path)
    times = table.column("open_time").cast("int64").to_numpy()
    o, h, l, c = (
        np.rint(table.column(n).to_numpy().astype(np.float64) / BUNDLED_TICK).astype(np.int64)
        for n in ("open", "high", "low", "close")
    )
    v = np.rint(table.column("volume").to_numpy() / BUNDLED_STEP).astype(np.int64)
    if np.any(np.diff(times) != BAR_MS):
        raise ValueError("bundled candles must be consecutive 5m candles")
    body = np.log(c / o)
    up = np.log(h / np.maximum(o, c))
    down = np.log(np.minimum(o, c) / l)
    quote = v * BUNDLED_STEP * (h + l + c) / 3.0 * BUNDLED_TICK
    phase0 = int(times[0] % DAY_MS) // BAR_MS
    return Bundled(times, o, h, l, c, v, body - body.mean(), up, down, quote, phase0)


@dataclass(frozen=True)
class PathStyle:
    """How a symbol's reference path differs from the bundled BTC template."""

    tick: float  # reference venue price tick
    step: float  # reference venue lot step
    vol_mult: float  # scale of returns and wicks relative to BTC
    notional: float  # quote volume relative to BTC


def _sources(tpl: Bundled, rng: np.random.Generator, start_ms: int, n: int) -> np.ndarray:
    """Bootstrap source indices for n bars from start_ms: blocks taken at the same time of day."""
    n_tpl = len(tpl.body)
    nblocks = -(-n // BLOCK)
    starts = start_ms + np.arange(nblocks, dtype=np.int64) * BLOCK * BAR_MS
    phase = (starts % DAY_MS) // BAR_MS
    first = (phase - tpl.phase0) % BARS_PER_DAY  # earliest template index with that time of day
    days = (n_tpl - BLOCK - first) // BARS_PER_DAY + 1
    src0 = first + rng.integers(0, np.maximum(days, 1)) * BARS_PER_DAY
    idx = (src0[:, None] + np.arange(BLOCK)[None, :]).ravel()[:n]
    return np.minimum(idx, n_tpl - 1)


def _finish_bars(
    tpl: Bundled, src: np.ndarray, o: np.ndarray, c: np.ndarray, style: PathStyle
) -> dict[str, np.ndarray]:
    """Add highs, lows and volumes to integer opens/closes from the template rows `src`."""
    top, bot = np.maximum(o, c), np.minimum(o, c)
    h = np.maximum(np.rint(top * np.exp(tpl.up[src] * style.vol_mult)), top).astype(np.int64)
    l = np.minimum(np.rint(bot * np.exp(-tpl.down[src] * style.vol_mult)), bot)
    l = np.maximum(l, 1).astype(np.int64)
    price = (h + l + c) / 3.0 * style.tick
    v = np.maximum(np.rint(tpl.quote[src] * style.notional / price / style.step), 1)
    return {"o": o, "h": h, "l": l, "c": c, "v": v.astype(np.int64)}


def forward_bars(
    tpl: Bundled,
    rng: np.random.Generator,
    start_ms: int,
    n: int,
    open_ticks: int,
    anchor_log: float,
    style: PathStyle,
) -> dict[str, np.ndarray]:
    """n bootstrapped 5m bars from start_ms whose first open is open_ticks (a day per chunk)."""
    src = _sources(tpl, rng, start_ms, n)
    log0 = np.log(open_ticks * style.tick)
    drift = -KAPPA * (log0 - anchor_log) / BARS_PER_DAY  # per bar
    logc = log0 + np.cumsum(tpl.body[src] * style.vol_mult + drift)
    c = np.maximum(np.rint(np.exp(logc) / style.tick), 1).astype(np.int64)
    o = np.concatenate(([open_ticks], c[:-1])).astype(np.int64)
    return _finish_bars(tpl, src, o, c, style)


def backward_bars(
    tpl: Bundled,
    rng: np.random.Generator,
    end_ms: int,
    n: int,
    close_ticks: int,
    anchor_log: float,
    style: PathStyle,
) -> dict[str, np.ndarray]:
    """n bootstrapped 5m bars ending at end_ms whose last close is close_ticks."""
    start_ms = end_ms - n * BAR_MS
    src = _sources(tpl, rng, start_ms, n)
    r = tpl.body[src] * style.vol_mult
    # walk back day by day, pulling the level toward the anchor (mirror of forward_bars)
    x = np.log(close_ticks * style.tick) - anchor_log
    stop = n
    while stop > 0:
        start = max(stop - BARS_PER_DAY, 0)
        r[start:stop] += KAPPA * x / BARS_PER_DAY
        x -= r[start:stop].sum()
        stop = start
    log_end = np.log(close_ticks * style.tick)
    suffix = np.concatenate((np.cumsum(r[::-1])[::-1][1:], [0.0]))  # sum of r after each bar
    logc = log_end - suffix
    c = np.maximum(np.rint(np.exp(logc) / style.tick), 1).astype(np.int64)
    c[-1] = close_ticks
    first = max(int(np.rint(np.exp(logc[0] - r[0]) / style.tick)), 1)
    o = np.concatenate(([first], c[:-1])).astype(np.int64)
    return _finish_bars(tpl, src, o, c, style)


def expand_to_minutes(
    bars: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Split 5m bars into five 1m candles each that aggregate back to exactly the same bar."""
    o5, h5, l5, c5, v5 = (bars[k][:, None] for k in ("o", "h", "l", "c", "v"))
    n = len(bars["o"])
    frac = np.arange(1, 6) / 5.0
    walk = np.cumsum(rng.standard_normal((n, 5)), axis=1) / np.sqrt(5.0)
    bridge = walk - frac * walk[:, 4:5]
    path = o5 + (c5 - o5) * frac + (h5 - l5) * 0.35 * bridge
    closes = np.clip(np.rint(path), l5, h5).astype(np.int64)
    closes[:, 4] = c5[:, 0]
    opens = np.concatenate((o5, closes[:, :4]), axis=1)
    top, bot = np.maximum(opens, closes), np.minimum(opens, closes)
    highs = top + np.floor((h5 - top) * rng.random((n, 5)) ** 3).astype(np.int64)
    lows = bot - np.floor((bot - l5) * rng.random((n, 5)) ** 3).astype(np.int64)
    rows = np.arange(n)
    highs[rows, np.argmax(top + rng.random((n, 5)) * 0.5, axis=1)] = h5[:, 0]
    lows[rows, np.argmin(bot - rng.random((n, 5)) * 0.5, axis=1)] = l5[:, 0]
    weight = (0.25 + rng.random((n, 5))) * (1.0 + (highs - lows) / (h5 - l5 + 1.0))
    weight /= weight.sum(axis=1, keepdims=True)
    vols = np.floor(v5 * weight).astype(np.int64)
    vols[rows, np.argmax(weight, axis=1)] += v5[:, 0] - vols.sum(axis=1)
    out = {"o": opens, "h": highs, "l": lows, "c": closes, "v": vols}
    return {k: a.ravel() for k, a in out.items()}


@dataclass(frozen=True)
class VenueStyle:
    """How a venue's prices and volumes differ from the reference venue (Binance USDⓈ-M)."""

    tick: float
    step: float
    basis_bps: float  # mean premium (+) or discount (-) to the reference, in basis points
    wander_bps: float  # amplitude of the slow, smooth basis variation
    noise_bps: float  # per-minute noise
    volume_scale: float
    avg_trade_usd: float


def basis(times: np.ndarray, style: VenueStyle, phases: np.ndarray) -> np.ndarray:
    """Slowly varying log basis of a venue at the given times: a smooth function of time alone."""
    if len(times) == 0:
        return np.zeros(0)
    hour = 3_600_000
    knots = np.arange(times[0] // hour, times[-1] // hour + 2, dtype=np.int64) * hour
    periods_days = np.array([0.7, 3.1, 11.3])
    t_days = knots[:, None] / DAY_MS
    wave = np.sin(2 * np.pi * t_days / periods_days[None, :] + phases[None, :]).sum(axis=1) / 1.7
    level = (style.basis_bps + style.wander_bps * wave) * 1e-4
    return np.interp(times, knots, level)


def derive_venue(
    ref: dict[str, np.ndarray],
    times: np.ndarray,
    ref_tick: float,
    ref_step: float,
    style: VenueStyle,
    phases: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Another venue's 1m candles: the reference times a small basis plus noise, on its own grid."""
    n = len(times)
    factor = np.exp(basis(times, style, phases) + rng.standard_normal(n) * style.noise_bps * 1e-4)
    scale = ref_tick * factor / style.tick
    out = {k: np.maximum(np.rint(ref[k] * scale), 1).astype(np.int64) for k in ("o", "h", "l", "c")}
    if n > 1:  # open where the previous minute closed, as on the reference venue
        out["o"][1:] = out["c"][:-1]
        out["h"] = np.maximum(out["h"], out["o"])
        out["l"] = np.minimum(out["l"], out["o"])
    noise = np.exp(rng.standard_normal(n) * 0.25 - 0.03)
    vol = ref["v"] * ref_step * style.volume_scale * noise / style.step
    out["v"] = np.where(ref["v"] > 0, np.rint(vol), 0).astype(np.int64)
    return out


def add_extras(
    bars: dict[str, np.ndarray],
    tick: float,
    step: float,
    avg_trade_usd: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Add quote volume, trade count and taker-buy base/quote volume to 1m candles."""
    o, h, l, c, v = (bars[k] for k in ("o", "h", "l", "c", "v"))
    n = len(o)
    vwap = (h + l + c) / 3.0 * tick
    quote = v * step * vwap
    trades = np.rint(quote / avg_trade_usd * np.exp(rng.standard_normal(n) * 0.3))
    trades = np.where(v > 0, np.maximum(trades, 1), 0).astype(np.int64)
    lean = np.sign(c - o) * 0.12 + rng.standard_normal(n) * 0.08
    taker = np.floor(v * np.clip(0.5 + lean, 0.05, 0.95)).astype(np.int64)
    out = dict(bars)
    out.update(q=quote, n=trades, tb=taker, tq=taker * step * vwap)
    return out
