"""Scriptable faults of the simulator, per test (`sim.fault(...)`) or from the command line.

A fault answers the next `times` matching requests after letting `after` of them through;
`KINDS` lists them. The kinds, their answers and keys: docs/exchanges.md#the-simulator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from vectorflow.errors import InvalidInput
from vectorflow.timeframes import parse_time

KINDS = (
    "rate_limit",
    "ban",
    "error",
    "slow",
    "reset",
    "garbage",
    "truncated",
    "duplicate",
    "shuffle",
    "missing",
)
BEFORE_ROUTE = frozenset({"rate_limit", "ban", "error", "reset", "garbage"})
KLINE_PATHS = {
    "/api/v3/klines": "binance",
    "/fapi/v1/klines": "binance",
    "/v5/market/kline": "bybit",
}
GARBAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass
class Fault:
    """One scripted fault (the kinds: docs/exchanges.md#the-simulator)."""

    kind: str
    path: str | None = None  # exact path; None: any path of `exchange` (of any exchange if None)
    exchange: str | None = None
    times: int | None = 1  # requests it answers; None: no end
    after: int = 0  # matching requests let through before it starts
    status: int | None = None
    code: int | None = None
    message: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    start: int | str | None = None
    end: int | str | None = None
    seen: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(
                f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}"
            )
        if self.kind == "missing":
            if self.start is None or self.end is None:
                raise InvalidInput("a 'missing' fault needs start and end (ms or ISO times)")
            self.start, self.end = (
                parse_time(self.start, name="start"),
                parse_time(self.end, name="end"),
            )
            if self.times == 1:
                self.times = None

    def ban_seconds(self, exchange: str) -> float:
        """How long a `ban` fault bans (exchange seconds): Retry-After, else the exchange's rule."""
        if self.retry_after is not None:
            return self.retry_after
        return 600.0 if exchange == "bybit" else 120.0

    def matches(self, exchange: str, path: str) -> bool:
        """True when a request to `path` is one this fault is about."""
        if self.path is not None and self.path != path:
            return False
        if self.exchange is not None and self.exchange != exchange:
            return False
        return self.kind != "missing" or path in KLINE_PATHS

    @classmethod
    def parse(cls, text: str) -> Fault:
        """`KIND[@PATH][:key=value,...]` as written on the command line."""
        head, _, options = text.partition(":")
        kind, _, path = head.partition("@")
        values: dict[str, object] = {"kind": kind.strip(), "path": path.strip() or None}
        types = {f.name: f.type for f in fields(cls)}
        for item in filter(None, (o.strip() for o in options.split(","))):
            key, eq, value = item.partition("=")
            if not eq or key not in types or key in ("kind", "path", "seen"):
                raise InvalidInput(f"fault {text!r}: bad option {item!r}")
            values[key] = _convert(key, value)
        return cls(**values)


def _convert(key: str, value: str) -> object:
    if key in ("times", "after", "status", "code"):
        return None if value in ("", "none") else int(value)
    if key in ("retry_after", "delay"):
        return float(value)
    if key in ("start", "end"):
        return int(value) if value.lstrip("-").isdigit() else value
    return value


def load_faults(texts: list[str] | None = None, script: str | Path | None = None) -> list[Fault]:
    """Faults from command-line strings and a JSON script (a list of objects)."""
    faults = [Fault.parse(t) for t in texts or []]
    if script:
        try:
            items = json.loads(Path(script).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"fault script {script}: {exc}") from None
        if not isinstance(items, list):
            raise InvalidInput(f"fault script {script}: expected a JSON list of faults")
        try:
            faults += [Fault(**item) for item in items]
        except TypeError as exc:
            raise InvalidInput(f"fault script {script}: {exc}") from None
    return faults


def canned(fault: Fault, exchange: str, now: int) -> tuple[int, str, dict[str, str]]:
    """The answer of a fault that replaces the real one: (status, body, headers)."""
    headers: dict[str, str] = {}
    if fault.kind == "garbage":
        return 200, GARBAGE, headers
    if fault.kind in ("rate_limit", "ban"):
        if fault.retry_after is not None or exchange == "binance":
            headers["Retry-After"] = (
                f"{fault.retry_after if fault.retry_after is not None else 1:g}"
            )
    if fault.kind == "rate_limit":
        if exchange == "bybit":
            return 429, _bybit(10006, fault.message or "Too many visits!", now), headers
        return 429, _binance(-1003, fault.message or "Too many requests; IP rate limit."), headers
    if fault.kind == "ban":
        if exchange == "bybit":
            return 403, fault.message or "403 Forbidden: access too frequent", headers
        return 418, _binance(-1003, fault.message or "Way too many requests; IP banned."), headers
    status = fault.status or (200 if exchange == "bybit" and fault.code else 500)
    if fault.code is None:
        return status, f"<html><body><h1>{status}</h1></body></html>", headers
    if exchange == "bybit":
        return status, _bybit(fault.code, fault.message or "error", now), headers
    return status, _binance(fault.code, fault.message or "An error occurred."), headers


def _binance(code: int, msg: str) -> str:
    return json.dumps({"code": code, "msg": msg})


def _bybit(code: int, msg: str, now: int) -> str:
    return json.dumps({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now})


def transform(fault: Fault, exchange: str, path: str, params: dict, body: str, rerun) -> str:
    """The real answer changed by a fault: truncated, rows repeated, reordered or missing."""
    if fault.kind == "truncated":
        return body[: len(body) // 2]
    if fault.kind not in ("duplicate", "shuffle", "missing") or path not in KLINE_PATHS:
        return body
    doc = json.loads(body)
    rows = doc if isinstance(doc, list) else doc.get("result", {}).get("list")
    if not isinstance(rows, list):
        return body
    if fault.kind == "duplicate" and len(rows) >= 4:
        mid = len(rows) // 2
        rows[mid:mid] = rows[mid - 3 : mid]
    elif fault.kind == "shuffle" and len(rows) >= 4:
        mid = len(rows) // 2
        rows[mid - 2 : mid + 2] = rows[mid - 2 : mid + 2][::-1]
    elif fault.kind == "missing":
        rows[:] = _without_gap(fault, exchange, params, rows, rerun)
    return json.dumps(doc, separators=(",", ":"))


def _without_gap(fault: Fault, exchange: str, params: dict, rows: list, rerun) -> list:
    """`rows` minus the missing range, filled up to the page's limit from beyond the gap."""
    kept = [r for r in rows if not fault.start <= int(r[0]) < fault.end]
    removed = len(rows) - len(kept)
    limit = int(params.get("limit") or (500 if exchange == "binance" else 200))
    if not removed or len(rows) < limit:
        return kept
    newest_first = exchange == "bybit"
    oldest_first = ("startTime" in params) if exchange == "binance" else "end" not in params
    times = [int(r[0]) for r in rows]
    more = dict(params, limit=str(removed))
    if oldest_first:
        more["startTime" if exchange == "binance" else "start"] = str(max(times) + 1)
    else:
        more["endTime" if exchange == "binance" else "end"] = str(min(times) - 1)
    extra = json.loads(rerun(more))
    extra = extra if isinstance(extra, list) else extra["result"]["list"]
    extra = [r for r in extra if not fault.start <= int(r[0]) < fault.end]
    ordered = sorted(kept + extra, key=lambda r: int(r[0]), reverse=newest_first)
    return ordered[:limit] if oldest_first != newest_first else ordered[-limit:]
