"""New actionable playbooks posted to a webhook (a local HTTP server), each exactly once."""

from __future__ import annotations

from tests.playbooks.conftest import CANARY, HOUR, lake_of, make_candles, store_candles
from tests.webhook import TOKEN_PATH
from vectorflow.playbooks.notify import message, notify_playbooks
from vectorflow.playbooks.record import PlaybookRecord
from vectorflow.timeframes import floor_ms, ms_to_iso, now_ms
from vectorflow.units import Unit

SERIES = [
    Unit("binance", "spot", "BTC/USDT", "1h"),
    Unit("bybit", "spot", "BTC/USDT", "1h"),
    Unit("binance", "linear", "BTC/USDT:USDT", "1h"),
    Unit("bybit", "linear", "BTC/USDT:USDT", "1h"),
]


NOW = now_ms()  # one time for every record: a cached copy has its original's as_of


def _record(pid: str, **changes) -> PlaybookRecord:
    now = NOW
    values = dict(
        playbook_id=pid, created_at=now, run_id="r", exchange="binance", market="spot",
        symbol="BTC/USDT", timeframe="1h", as_of=now - HOUR, source="rules", status="ok",
        inputs_hash=f"h-{pid}", bias="long", confidence=70, entry_type="limit",
        entry_low=60_100.0, entry_high=60_150.5, stop_loss=59_800.0,
        targets=((60_600.0, 0.5), (61_000.0, 0.5)), valid_until=now + 47 * HOUR, tick_size=0.5,
    )  # fmt: skip
    return PlaybookRecord(**(values | changes))


def test_only_new_actionable_playbooks_are_posted_and_a_failed_post_is_retried(
    webhook, tmp_path
):
    records = [
        _record("go"),
        _record("shy", confidence=40),
        _record("flat", bias="no_trade"),
        _record("late", valid_until=now_ms() - 1),
        _record("bad", status="abstained"),
        _record("copy", playbook_id="other", inputs_hash="h-go"),  # the same playbook, cached
    ]
    state = tmp_path / "notifications.db"
    webhook.status = 500
    failed = notify_playbooks(records, webhook.url, state, min_confidence=60, now_ms=now_ms())
    assert (failed.posted, failed.failed, webhook.posts) == (0, 1, [])
    webhook.status = 200
    done = notify_playbooks(records, webhook.url, state, min_confidence=60, now_ms=now_ms())
    assert (done.posted, done.already) == (1, 1)
    again = notify_playbooks(records, webhook.url, state, min_confidence=60, now_ms=now_ms())
    assert (again.posted, len(webhook.posts)) == (0, 1)
    (post,) = webhook.posts
    assert post["path"] == TOKEN_PATH
    assert post["text"] == message(records[0])
    lines = post["text"].splitlines()
    assert lines[0] == "VectorFlow playbook: binance spot BTC/USDT 1h LONG (confidence 70)"
    assert lines[1] == (
        "entry limit 60,100.0-60,150.5, stop 59,800.0, targets 60,600.0 / 61,000.0"
    )
    assert lines[2].startswith(f"valid until {ms_to_iso(records[0].valid_until)}")
    assert lines[2].endswith("source rules")


def test_the_playbook_flow_posts_each_new_playbook_once_never_the_key(
    prefect_api, llm, webhook, data_dir, monkeypatch
):
    from flows.playbooks import generate_playbooks

    newest = floor_ms(now_ms(), "1h")  # candles up to the last hour: the playbooks are current
    for i, unit in enumerate(SERIES):
        store_candles(lake_of(data_dir), unit, make_candles(400, end_ms=newest, seed=i))
    (data_dir / "vectorflow.toml").write_text(
        f'[notifications]\nwebhook_url = "{webhook.url}"\nplaybooks = true\n'
        "playbooks_min_confidence = 60\n"
    )
    monkeypatch.setenv("VECTORFLOW_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XAI_API_KEY", CANARY)
    monkeypatch.setenv("XAI_BASE_URL", llm.url)
    parameters = dict(
        exchanges=["binance", "bybit"],
        markets=["spot", "linear"],
        symbols=["BTC/USDT", "BTC/USDT:USDT"],
        timeframes=["1h"],
    )
    rows = generate_playbooks(**parameters, return_state=True).result()
    assert sorted((r["source"], r["status"]) for r in rows) == [("grok", "ok")] * 4
    assert len(webhook.posts) == 4  # the fake LLM trades every series, confidence 62
    texts = [post["text"] for post in webhook.posts]
    heads = sorted(t.splitlines()[0].rsplit(" ", 3)[0] for t in texts)
    assert heads == sorted(f"VectorFlow playbook: {u.label}" for u in SERIES)
    assert all(t.splitlines()[0].split()[-3] in ("LONG", "SHORT") for t in texts)
    assert all("source grok" in t and "valid until" in t for t in texts)
    assert not [t for t in texts if CANARY in t]
    again = generate_playbooks(**parameters, return_state=True).result()
    assert all(r["cached"] for r in again) and len(webhook.posts) == 4  # posted once

