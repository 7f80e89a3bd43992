"""The jobs table (deployments, schedules, what each does), generated from prefect.yaml.

The README shows the same table; `tests/test_docs.py` checks that it equals `render()`.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from cells import cell

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


def _schedule(deployment: dict) -> str:
    crons = [
        f"`{s['cron']}`" + ("" if s.get("timezone") == "UTC" else f" ({s.get('timezone')})")
        for s in deployment.get("schedules") or [] if s.get("active", True)
    ]
    return ", ".join(crons) or "none: run it by hand"


def _overlap(deployment: dict) -> str:
    limit = deployment.get("concurrency_limit")
    if isinstance(limit, dict) and limit.get("collision_strategy") == "CANCEL_NEW":
        return "cancelled"
    return "queued" if limit else "runs alongside"


def render(_argument: str | None = None) -> str:
    """One row per deployment: name, cron (UTC), what it does, what happens to an overlap."""
    spec = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    lines = [
        "| deployment | schedule (cron, UTC) | what it does | an overlapping run is |",
        "|---|---|---|---|",
    ]
    for deployment in spec["deployments"]:
        row = [f"`{deployment['name']}`", _schedule(deployment),
               cell(deployment.get("description", "")), _overlap(deployment)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
