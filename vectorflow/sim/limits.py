"""The exchanges' real per-IP budgets and bans, as the simulator enforces them.

Counted always (for `X-MBX-USED-WEIGHT-1M`), enforced when `enforce` is on, on the host's wall
clock multiplied by `time_scale` (the client's limiter uses the same), independent of the
simulator's pinned data clock. The rules: docs/exchanges.md#the-simulator.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """One budget the exchange enforces per IP."""

    name: str
    exchange: str
    limit: int
    window_seconds: float
    sliding: bool
    by_weight: bool  # False: every request counts 1
    paths: tuple[str, ...]


BUDGETS = (
    Budget("binance_spot", "binance", 6000, 60, False, True, ("/api/",)),
    Budget("binance_usdm", "binance", 2400, 60, False, True, ("/fapi/", "/futures/")),
    Budget("binance_open_interest_hist", "binance", 1000, 300, False, False, ("/futures/data/",)),
    Budget(
        "binance_funding",
        "binance",
        500,
        300,
        False,
        False,
        ("/fapi/v1/fundingRate", "/fapi/v1/fundingInfo"),
    ),
    Budget("bybit", "bybit", 600, 5, True, False, ("/v5/",)),
)
HEADER_BUDGETS = {"binance_spot", "binance_usdm"}  # reported in X-MBX-USED-WEIGHT-1M
IGNORED_429S_BEFORE_BAN = 3
BINANCE_FIRST_BAN_SECONDS = 120
BYBIT_BAN_SECONDS = 600

Refusal = tuple[int, str, dict[str, str]]


class Limits:
    """Counts every request against its budgets; refuses and bans when enforcing."""

    def __init__(self, time_scale: float = 1.0, enforce: bool = False, clock=time.time) -> None:
        self.time_scale, self.enforce, self.clock = time_scale, enforce, clock
        self._lock = threading.Lock()
        self._fixed: dict[tuple[str, int, int], int] = {}
        self._sliding: dict[str, deque] = {}
        self._bans: dict[str, tuple[float, int, str]] = {}  # exchange -> (until, status, body)
        self._cooling: dict[str, float] = {}  # exchange -> end of the last 429's Retry-After
        self._ignored: dict[str, int] = {}
        self._ban_count: dict[str, int] = {}

    def window_index(self, budget: Budget, wall: float) -> int:
        """Which fixed window `wall` falls in."""
        return math.floor(wall / (budget.window_seconds * self.time_scale))

    def window_use(self, requests: list[dict], name: str) -> dict[int, int]:
        """Weight (or requests) accepted per fixed window of budget `name`, from a request log."""
        budget = next(b for b in BUDGETS if b.name == name)
        use: dict[int, int] = {}
        for r in requests:
            if r["exchange"] == budget.exchange and r["path"].startswith(budget.paths):
                if r["weight"] or r["status"] < 400:
                    index = self.window_index(budget, r["wall"])
                    use[index] = use.get(index, 0) + (r["weight"] if budget.by_weight else 1)
        return use

    def _used(self, budget: Budget, wall: float, data_minute: int) -> int:
        if budget.sliding:
            events = self._sliding.setdefault(budget.name, deque())
            while events and events[0] <= wall - budget.window_seconds * self.time_scale:
                events.popleft()
            return len(events)
        return self._fixed.get((budget.name, data_minute, self.window_index(budget, wall)), 0)

    def ban(self, exchange: str, seconds: float, status: int, body: str) -> None:
        """Refuse every request to `exchange` for `seconds` (exchange time) with this answer."""
        with self._lock:
            until = self.clock() + seconds * self.time_scale
            self._bans[exchange] = (until, status, body)

    def is_banned(self, exchange: str) -> bool:
        """True while a ban on `exchange` runs."""
        with self._lock:
            return self._banned(exchange, self.clock()) is not None

    def _banned(self, exchange: str, wall: float) -> Refusal | None:
        ban = self._bans.get(exchange)
        if ban is None or ban[0] <= wall:
            return None
        left = math.ceil((ban[0] - wall) / self.time_scale)
        return ban[1], ban[2], {"Retry-After": str(left)}

    def admit(
        self, exchange: str, path: str, weight: int, data_minute: int
    ) -> tuple[Refusal | None, dict[str, str]]:
        """Count one request; (a refusal or None, headers reporting the use)."""
        with self._lock:
            wall = self.clock()
            refusal = self._banned(exchange, wall)
            budgets = [b for b in BUDGETS if b.exchange == exchange and path.startswith(b.paths)]
            if refusal is None and self.enforce:
                refusal = self._over(exchange, budgets, weight, wall, data_minute)
            if refusal is None:
                for b in budgets:
                    self._charge(b, weight if b.by_weight else 1, wall, data_minute)
            headers = {}
            for b in budgets:
                if b.name in HEADER_BUDGETS:
                    headers["X-MBX-USED-WEIGHT-1M"] = str(self._used(b, wall, data_minute))
            return refusal, headers

    def _charge(self, budget: Budget, n: int, wall: float, data_minute: int) -> None:
        if budget.sliding:
            self._sliding.setdefault(budget.name, deque()).extend([wall] * n)
            return
        key = (budget.name, data_minute, self.window_index(budget, wall))
        self._fixed[key] = self._fixed.get(key, 0) + n
        for old in [k for k in self._fixed if k[0] == budget.name and k[2] < key[2] - 1]:
            del self._fixed[old]

    def _over(self, exchange, budgets, weight, wall, data_minute) -> Refusal | None:
        if self._cooling.get(exchange, 0) > wall:  # a 429's Retry-After is still running
            self._ignored[exchange] = self._ignored.get(exchange, 0) + 1
            if self._ignored[exchange] >= IGNORED_429S_BEFORE_BAN:
                return self._ban_binance(wall)
            return _too_many(math.ceil((self._cooling[exchange] - wall) / self.time_scale))
        for b in budgets:
            n = weight if b.by_weight else 1
            if self._used(b, wall, data_minute) + n <= b.limit:
                continue
            if exchange == "bybit":
                self._bans[exchange] = (
                    wall + BYBIT_BAN_SECONDS * self.time_scale,
                    403,
                    "403 Forbidden: access too frequent",
                )
                return self._banned(exchange, wall)
            window = b.window_seconds * self.time_scale
            self._cooling[exchange] = (self.window_index(b, wall) + 1) * window
            self._ignored[exchange] = 0
            return _too_many(math.ceil((self._cooling[exchange] - wall) / self.time_scale))
        return None

    def _ban_binance(self, wall: float) -> Refusal:
        count = self._ban_count["binance"] = self._ban_count.get("binance", 0) + 1
        seconds = BINANCE_FIRST_BAN_SECONDS * 2 ** (count - 1)
        until = wall + seconds * self.time_scale
        body = json.dumps({"code": -1003, "msg": f"Way too many requests; IP banned until {until}"})
        self._bans["binance"] = (until, 418, body)
        self._cooling.pop("binance", None)
        return self._banned("binance", wall)


def _too_many(retry_after: int) -> Refusal:
    body = json.dumps(
        {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 6000 request weight per "
            "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
        }
    )
    return 429, body, {"Retry-After": str(max(retry_after, 1))}
