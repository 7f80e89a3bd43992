"""An order book that evolves in real time, for the WebSocket simulator and its REST snapshots.

A `LiveBook` starts from the simulator's book of the moment (`vectorflow.sim.orderbook.book`)
and changes a few levels every tick (amounts, levels added and removed, now and then a better
price). Prices and amounts are integers (ticks, quantity steps), so a level read back from the
wire text is exactly the level the book holds. Every version is kept for a while, so a test can
ask for the true book at an update id or a time.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from vectorflow.sim import orderbook, synth
from vectorflow.sim.series import History, Series

LEVELS = 200  # levels per side the book keeps (REST snapshots of 1000 hold all of them)
KEEP_VERSIONS = 5000  # versions kept for `true_book` (about 8 minutes at 100 ms ticks)

Side = dict[int, int]  # price ticks -> amount steps


@dataclass(frozen=True)
class Version:
    """One state of the book: its update id, exchange time and both sides."""

    update_id: int
    time_ms: int
    bids: Side
    asks: Side


def top(side: Side, depth: int | None, *, bids: bool) -> list[tuple[int, int]]:
    """The best `depth` levels (all with None) of one side, best first."""
    ordered = sorted(side.items(), reverse=bids)
    return ordered if depth is None else ordered[:depth]


class LiveBook:
    """One venue's evolving book of one symbol; every method is thread-safe."""

    def __init__(self, history: History, series: Series, now: int, *, id_step: int) -> None:
        self.tick, self.step = series.tick, series.step
        grid = series.spec.grids[series.venue]
        self.price_dp, self.qty_dp = grid.price_decimals, grid.qty_decimals
        self.id_step = id_step  # Binance: events span several ids; Bybit: u + 1 per message
        self.rng = synth.rng_for(history.seed, *series.venue, series.spec.id, "live")
        bids, asks = orderbook.book(history, series, now, LEVELS)
        self.bids = {round(p / self.tick): max(round(q / self.step), 1) for p, q in bids}
        self.asks = {round(p / self.tick): max(round(q / self.step), 1) for p, q in asks}
        self.update_id = int(now // 10)
        self.time_ms = now
        self.lock = threading.Lock()
        self.versions: deque[Version] = deque(maxlen=KEEP_VERSIONS)
        self._keep()

    def _keep(self) -> None:
        state = Version(self.update_id, self.time_ms, dict(self.bids), dict(self.asks))
        self.versions.append(state)

    def price_text(self, ticks: int) -> str:
        """A price as the exchange writes it."""
        return f"{ticks * self.tick:.{self.price_dp}f}"

    def qty_text(self, steps: int) -> str:
        """An amount as the exchange writes it."""
        return f"{steps * self.step:.{self.qty_dp}f}"

    def rows(self, levels: list[tuple[int, int]]) -> list[list[str]]:
        """Levels as [["price", "amount"], ...] text rows."""
        return [[self.price_text(p), self.qty_text(q)] for p, q in levels]

    def advance(self, now: int, *, skip_ids: int = 0) -> tuple[int, int]:
        """Change a few levels; returns (first, last) update id of the change."""
        with self.lock:
            first = self.update_id + 1 + skip_ids
            for _ in range(int(self.rng.integers(1, 4))):
                self._change()
            steps = 1 if self.id_step == 1 else int(self.rng.integers(1, self.id_step + 1))
            self.update_id = first + steps - 1
            self.time_ms = max(now, self.time_ms)
            self._keep()
            return first, self.update_id

    def _change(self) -> None:
        rng = self.rng
        is_bid = bool(rng.integers(0, 2))
        side, other = (self.bids, self.asks) if is_bid else (self.asks, self.bids)
        ordered = top(side, None, bids=is_bid)
        index = min(int(rng.geometric(0.12)) - 1, len(ordered) - 1)
        price = ordered[index][0]
        roll = rng.random()
        if roll < 0.55:
            side[price] = max(int(rng.lognormal(np.log(max(ordered[index][1], 2)), 0.5)), 1)
        elif roll < 0.75 and len(side) > LEVELS // 2:
            del side[price]
        else:
            sign = -1 if is_bid else 1
            new = price + sign * int(rng.integers(1, 4))
            if index == 0 and rng.random() < 0.3:  # now and then a better price
                new = price - sign
            best_other = min(other) if is_bid else max(other)
            crosses = new >= best_other if is_bid else new <= best_other
            if new > 0 and not crosses and new not in side:
                side[new] = max(int(rng.lognormal(np.log(max(ordered[index][1], 2)), 0.7)), 1)
        while len(side) > LEVELS:
            del side[min(side) if is_bid else max(side)]

    def view(self, depth: int | None) -> tuple[int, int, list, list]:
        """(update id, time, bids, asks) of the current book's top `depth` levels."""
        with self.lock:
            return (
                self.update_id,
                self.time_ms,
                top(self.bids, depth, bids=True),
                top(self.asks, depth, bids=False),
            )

    def version(self, *, update_id: int | None = None, at_ms: int | None = None) -> Version:
        """The book as of an update id (the last version at or before it) or a time."""
        with self.lock:
            versions = list(self.versions)
        if update_id is None and at_ms is None:
            return versions[-1]
        chosen = None
        for v in versions:
            if (update_id is not None and v.update_id > update_id) or (
                at_ms is not None and v.time_ms > at_ms
            ):
                break
            chosen = v
        if chosen is None:
            raise LookupError(f"no version at or before {update_id or at_ms} is kept")
        return chosen


def diff(before: tuple[list, list], after: tuple[list, list]) -> tuple[list, list]:
    """Levels that changed from one view to the next (amount 0: the level went)."""
    out = []
    for old, new in zip(before, after, strict=True):
        old_map, new_map = dict(old), dict(new)
        changed = [(p, q) for p, q in new if old_map.get(p) != q]
        gone = [(p, 0) for p in old_map if p not in new_map]
        out.append(changed + gone)
    return out[0], out[1]
