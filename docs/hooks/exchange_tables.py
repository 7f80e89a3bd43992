"""Exchange facts as tables: endpoints, rate budgets, request weights and the error table.

Read from `vectorflow.exchanges.specs` and `vectorflow.exchanges.classify`, so they cannot drift.
"""

from __future__ import annotations

from cells import cell

from vectorflow.exchanges.classify import DEFAULT, RULES, Rule
from vectorflow.exchanges.specs import MARKET_DATA, SPECS, Charge


def budgets() -> str:
    """Every per-IP budget: its `[resilience.budgets]` name, limit, window and usage header."""
    lines = ["| exchange | budget | limit | window | counts requests to | usage header |",
             "|---|---|---|---|---|---|"]
    for spec in SPECS.values():
        for b in spec.budgets:
            paths = ", ".join(f"`{p}`" for p in b.paths)
            header = f"`{b.usage_header}`" if b.usage_header else "–"
            lines.append(f"| {spec.id} | `{b.name}` | {b.limit} | {b.window_seconds:g} s | "
                         f"{paths} | {header} |")
    return "\n".join(lines)


def _charge(charge: Charge) -> str:
    if not charge.by_limit:
        return f"{charge.weight} on `{charge.budget}`"
    steps = ", ".join(f"{w} (limit ≤ {n})" for n, w in charge.by_limit)
    return f"{steps} on `{charge.budget}`"


def weights() -> str:
    """Every request the pipeline makes: its ccxt method, breaker kind and cost."""
    lines = ["| exchange | ccxt method | breaker kind | cost |", "|---|---|---|---|"]
    for spec in SPECS.values():
        for method, endpoint in spec.endpoints.items():
            cost = "; ".join(_charge(c) for c in endpoint.charges) or "–"
            lines.append(f"| {spec.id} | `{method}` | `{endpoint.kind}` | {cost} |")
    return "\n".join(lines)


def endpoints() -> str:
    """What is fetched from where: candles, order books, open interest, funding per market."""
    lines = ["| exchange | data | market | ccxt method | per request | paging |",
             "|---|---|---|---|---|---|"]
    for name, spec in SPECS.items():
        data = MARKET_DATA[name]
        for market, k in spec.klines.items():
            paging = "bounded windows" if k.bounded_window else "forward from a start time"
            lines.append(f"| {name} | candles | {market} | `{k.method}` | {k.page_limit} rows | "
                         f"{paging} |")
        for market, d in data.depth.items():
            allowed = f" (only {', '.join(map(str, d.allowed))})" if d.allowed else ""
            time = f"exchange's `{d.time_field}`" if d.time_field else "local receive time"
            lines.append(f"| {name} | order book | {market} | `{d.method}` | up to {d.max_levels} "
                         f"levels{allowed} | snapshot time: {time} |")
        for label, h in (("open interest", data.open_interest), ("funding", data.funding)):
            order = "newest first" if h.newest_first else "oldest first"
            extra = [f"periods {', '.join(h.periods)}"] if h.periods else []
            extra += [f"only the last {h.horizon_days:g} days"] if h.horizon_days else []
            extra += ["cursor paging"] if h.cursor else []
            lines.append(f"| {name} | {label} | linear | `{h.method}` | {h.page_limit} rows | "
                         f"{'; '.join([order, *extra])} |")
    return "\n".join(lines)


def _numbers(values: frozenset[int]) -> str:
    """Integers as ranges: 408, 425, 500–599 (negative codes are listed one by one)."""
    runs: list[list[int]] = []
    for value in sorted(values):
        if runs and value == runs[-1][-1] + 1 and value > 0:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def _condition(rule: Rule) -> str:
    parts = [rule.target] if rule.target else []
    if rule.status:
        parts.append(f"HTTP {_numbers(rule.status)}")
    if rule.codes:
        parts.append(f"code {_numbers(rule.codes)}")
    if rule.any_code:
        parts.append("any exchange error code")
    if rule.text:
        parts.append(f"message containing '{rule.text}'")
    if rule.classes:
        parts.append(" or ".join(f"`{c.__name__}`" for c in rule.classes))
    return ", ".join(parts) or "anything else"


def error_rules() -> str:
    """The classification table: first matching row wins."""
    lines = ["| # | when | verdict | why |", "|---|---|---|---|"]
    for number, rule in enumerate((*RULES, DEFAULT), start=1):
        lines.append(f"| {number} | {cell(_condition(rule))} | `{rule.verdict}` | "
                     f"{cell(rule.why)} |")
    return "\n".join(lines)
