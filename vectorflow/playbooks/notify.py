"""New actionable playbooks posted to the webhook, each once, as a short readable message.

With `[notifications] playbooks = true`, every new `ok` / `repaired` long or short playbook whose
confidence reaches `playbooks_min_confidence` and that is still valid is posted as
`{"text": ...}` (what a Slack incoming webhook expects; any webhook receives the same JSON):
series, bias and confidence, entry zone, stop, targets, valid until, source. Nothing else: no
payload, no model text, never a key; the webhook URL (a credential) is never logged, only its
host.

Once per playbook: a playbook is claimed in `<data dir>/notifications.db` (SQLite, one row per
series, as_of, source and inputs) before it is posted, so a rerun, a cached copy or a
concurrent run never posts it again; a failed post gives the claim back for the next run.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests

from vectorflow.lake.storage import Storage
from vectorflow.playbooks.record import PlaybookRecord
from vectorflow.playbooks.store import read_playbooks
from vectorflow.playbooks.ticks import format_price
from vectorflow.timeframes import ms_to_iso

log = logging.getLogger(__name__)

ACTIONABLE = ("ok", "repaired")
POST_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class NotifyReport:
    """What a notification pass did."""

    posted: int = 0
    already: int = 0  # claimed by an earlier run
    failed: int = 0


def is_actionable(record: PlaybookRecord, min_confidence: int, now_ms: int) -> bool:
    """A valid directional playbook, confident enough, not expired."""
    return (
        record.status in ACTIONABLE
        and record.bias in ("long", "short")
        and (record.confidence or 0) >= min_confidence
        and (record.valid_until is None or record.valid_until > now_ms)
    )


def message(record: PlaybookRecord) -> str:
    """The text posted for one playbook."""
    def price(value: float) -> str:
        return format_price(value, record.tick_size)

    targets = " / ".join(price(p) for p, _ in record.targets)
    return (
        f"VectorFlow playbook: {record.exchange} {record.market} {record.symbol} "
        f"{record.timeframe} {record.bias.upper()} (confidence {record.confidence})\n"
        f"entry {record.entry_type} {price(record.entry_low)}-{price(record.entry_high)}, "
        f"stop {price(record.stop_loss)}, targets {targets}\n"
        f"valid until {ms_to_iso(record.valid_until)} (as of {ms_to_iso(record.as_of)}), "
        f"source {record.source}"
    )


def _key(record: PlaybookRecord) -> str:
    parts = [record.exchange, record.market, record.symbol, record.timeframe, str(record.as_of)]
    return "|".join([*parts, record.source, record.inputs_hash or record.playbook_id])


class _Claims:
    """The playbooks already posted (or being posted), shared by every process of a data dir."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS posted (key TEXT PRIMARY KEY, playbook_id TEXT, at TEXT)"
        )

    def claim(self, key: str, playbook_id: str) -> bool:
        cur = self.con.execute(
            "INSERT OR IGNORE INTO posted VALUES (?, ?, datetime('now'))", (key, playbook_id)
        )
        return cur.rowcount == 1

    def release(self, key: str) -> None:
        self.con.execute("DELETE FROM posted WHERE key = ?", (key,))

    def close(self) -> None:
        self.con.close()


def _post(url: str, text: str) -> None:
    response = requests.post(url, json={"text": text}, timeout=POST_TIMEOUT_SECONDS)
    response.raise_for_status()


def notify_playbooks(
    records: list[PlaybookRecord],
    webhook_url: str,
    state_path: Path,
    *,
    min_confidence: int,
    now_ms: int,
) -> NotifyReport:
    """Post each new actionable playbook of `records` once; what was posted."""
    host = f"{urlparse(webhook_url).scheme}://{urlparse(webhook_url).netloc}"
    posted = already = failed = 0
    seen: set[str] = set()  # a cached copy in the same pass is the same playbook
    with closing(_Claims(state_path)) as claims:
        for record in records:
            if not is_actionable(record, min_confidence, now_ms):
                continue
            key = _key(record)
            if key in seen or not claims.claim(key, record.playbook_id):
                already += 1
                continue
            seen.add(key)
            try:
                _post(webhook_url, message(record))
            except requests.RequestException as exc:
                claims.release(key)  # the next run tries again
                failed += 1
                log.warning("playbook notification to %s failed: %s", host, type(exc).__name__)
                continue
            posted += 1
    log.info("playbook notifications to %s: %d posted, %d already posted", host, posted, already)
    return NotifyReport(posted, already, failed)


def notify_stored(
    lake: Storage,
    playbook_ids: list[str],
    webhook_url: str,
    state_path: Path,
    *,
    min_confidence: int,
    now_ms: int,
) -> NotifyReport:
    """`notify_playbooks` for stored playbooks, by id."""
    records = read_playbooks(lake, playbook_ids)
    return notify_playbooks(
        records, webhook_url, state_path, min_confidence=min_confidence, now_ms=now_ms
    )
