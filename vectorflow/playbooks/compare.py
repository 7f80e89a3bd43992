"""Compare playbook sources on the same set of (series, as_of): which writer did better.

Only the (series, as_of) pairs where every compared source has a graded playbook count, so the
sources are judged on the same market moments. Per source: how many playbooks, how many
directional and `no_trade`, the share of directional ones that triggered, the win rate
(R > 0) and the average R of the triggered ones with a 95 % percentile-bootstrap interval
(BOOTSTRAP_SAMPLES resamples, a fixed seed so a report is reproducible), the share of `no_trade`
calls that avoided a loss, and the Brier score of `confidence` (see
`grading.brier_success`: a triggered trade won, or staying out avoided a loss).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from vectorflow.playbooks.grading import brier_success
from vectorflow.playbooks.record import PlaybookRecord

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20240101
_CHUNK = 250  # resamples drawn at once: bounded memory whatever the number of trades


def bootstrap_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """The percentile-bootstrap interval of the mean of `values` (None with fewer than 2)."""
    if len(values) < 2:
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = []
    for start in range(0, BOOTSTRAP_SAMPLES, _CHUNK):
        size = min(_CHUNK, BOOTSTRAP_SAMPLES - start)
        means.append(values[rng.integers(0, len(values), (size, len(values)))].mean(axis=1))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.concatenate(means), [tail, 100 - tail])
    return float(low), float(high)


def _key(record: PlaybookRecord) -> tuple:
    return (record.exchange, record.market, record.symbol, record.timeframe, record.as_of)


def common_moments(
    records: list[PlaybookRecord], outcomes: dict[str, dict], sources: tuple[str, ...]
) -> set[tuple]:
    """(series, as_of) keys at which every source has a graded playbook."""
    have: dict[tuple, set[str]] = defaultdict(set)
    for record in records:
        if record.playbook_id in outcomes:
            have[_key(record)].add(record.source)
    return {key for key, found in have.items() if set(sources) <= found}


def _metrics(pairs: list[tuple[PlaybookRecord, dict]]) -> dict:
    directional = [(r, o) for r, o in pairs if r.bias in ("long", "short")]
    stayed_out = [o for r, o in pairs if r.bias == "no_trade"]
    triggered = np.array([o["r_multiple"] for _, o in directional if o["triggered"]], float)
    scored = [
        (r.confidence / 100, s)
        for r, o in pairs
        if (s := brier_success(r.bias, o["triggered"], o["r_multiple"], o["avoided_loss"]))
        is not None
    ]
    interval = bootstrap_interval(triggered)
    return {
        "playbooks": len(pairs),
        "directional": len(directional),
        "no_trade": len(stayed_out),
        "share_triggered": len(triggered) / len(directional) if directional else None,
        "win_rate": float((triggered > 0).mean()) if len(triggered) else None,
        "avg_r": float(triggered.mean()) if len(triggered) else None,
        "avg_r_low": interval[0] if interval else None,
        "avg_r_high": interval[1] if interval else None,
        "total_r": float(triggered.sum()),
        "avoided_loss_share": sum(bool(o["avoided_loss"]) for o in stayed_out) / len(stayed_out)
        if stayed_out
        else None,
        "brier": float(np.mean([(p - float(s)) ** 2 for p, s in scored])) if scored else None,
        "scored": len(scored),
    }


def compare_sources(
    records: list[PlaybookRecord], outcomes: dict[str, dict], sources: tuple[str, ...]
) -> list[dict]:
    """One row of metrics per source over the (series, as_of) set every source has graded."""
    common = common_moments(records, outcomes, sources)
    rows = []
    for source in sources:
        mine = [r for r in records if r.source == source]
        pairs = [(r, outcomes[r.playbook_id]) for r in mine if _key(r) in common
                 and r.playbook_id in outcomes]
        statuses = dict(sorted(Counter(r.status for r in mine).items()))
        rows.append({"source": source, **_metrics(pairs), "statuses": statuses})
    return rows


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def comparison_markdown(rows: list[dict], title: str) -> str:
    """The comparison as a markdown table, with how each source's playbooks ended up."""
    lines = [
        f"### {title}",
        "",
        "| source | playbooks | directional | no_trade | triggered | win rate | avg R "
        "| 95 % CI | no_trade avoided loss | Brier |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        interval = (
            "-"
            if row["avg_r_low"] is None
            else f"{row['avg_r_low']:.3f} to {row['avg_r_high']:.3f}"
        )
        cells = [
            row["source"], row["playbooks"], row["directional"], row["no_trade"],
            row["share_triggered"], row["win_rate"], row["avg_r"], interval,
            row["avoided_loss_share"], row["brier"],
        ]  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    for row in rows:
        statuses = ", ".join(f"{n} {status}" for status, n in row["statuses"].items())
        lines.append(f"- {row['source']}: {statuses or 'no playbooks'}")
    return "\n".join(lines)
