"""Issue 21 for playbooks: the key never stored from an answer, skipped rows never the latest,
a horizon of no bars refused."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import query_catalog
from tests.playbooks.conftest import AS_OF, CANARY, HOUR, UNIT, lake_of
from tests.playbooks.test_writer import context, inputs, run
from vectorflow.errors import InvalidInput
from vectorflow.playbooks.inputs import PlaybookInputs
from vectorflow.playbooks.outcomes import grade_playbooks
from vectorflow.playbooks.store import write_playbooks
from vectorflow.playbooks.writer import WriteContext, playbooks_for
from vectorflow.settings.playbooks import PlaybookSettings

GIVEAWAYS = (
    CANARY,
    CANARY.upper(),
    CANARY.lower(),
    base64.b64encode(CANARY.encode()).decode(),
)


def test_an_answer_repeating_the_key_is_stored_without_it(llm, data_dir):
    # Regression: an LLM answer that contained the key was stored as is in playbooks.raw_answers
    llm.script("echo_key")
    (record,) = run(context(llm, lake_of(data_dir)))
    assert record.status == "ok"  # the answer is still a valid playbook
    answer = record.raw_answers[0]
    assert "Key ***; shouting ***; encoded ***." in answer
    stored_text = " ".join([*record.raw_answers, record.rationale or "", record.error or ""])
    for giveaway in GIVEAWAYS:
        assert giveaway not in stored_text
    sent = llm.chat_requests[0]["headers"]["authorization"]
    assert sent == f"Bearer {CANARY}"  # the fake did get (and echo) the real key


def test_a_skipped_row_at_a_later_as_of_never_hides_a_later_written_playbook(data_dir):
    # Regression: a skipped_stale row for a future as_of stayed the series' latest_playbooks
    lake = lake_of(data_dir)
    ctx = WriteContext(PlaybookSettings(), lake, "run-1")  # no client: rule-based playbooks
    future = AS_OF + 24 * 365 * HOUR
    stale = PlaybookInputs(UNIT, future, stale="no candles stored before 2027-05-28T20:00:00Z")
    skipped = playbooks_for(stale, ctx)
    write_playbooks(lake, skipped)
    written = playbooks_for(inputs(), ctx)  # written after the skipped row
    write_playbooks(lake, written)
    assert [r.status for r in skipped + written] == ["skipped_stale", "ok"]
    latest = query_catalog(data_dir, "SELECT playbook_id, status FROM latest_playbooks")
    assert latest == [(written[0].playbook_id, "ok")]
    again = playbooks_for(stale, ctx)  # a newer skipped row still does not win
    write_playbooks(lake, again)
    assert query_catalog(data_dir, "SELECT status FROM latest_playbooks") == [("ok",)]


def test_a_series_with_only_skipped_rows_shows_its_newest_one(data_dir):
    lake = lake_of(data_dir)
    ctx = WriteContext(PlaybookSettings(), lake, "run-1")
    older = playbooks_for(PlaybookInputs(UNIT, AS_OF, stale="gaps"), ctx)
    newer = playbooks_for(PlaybookInputs(UNIT, AS_OF + HOUR, stale="gaps"), ctx)
    write_playbooks(lake, older + newer)
    latest = query_catalog(data_dir, "SELECT playbook_id FROM latest_playbooks")
    assert latest == [(newer[0].playbook_id,)]


@pytest.mark.parametrize("horizon", [0, -1])
def test_grading_over_no_bars_is_refused(data_dir, horizon):
    # Regression: a horizon of 0 bars marked every open playbook not_triggered for good
    with pytest.raises(InvalidInput, match=f"horizon {horizon} must be at least 1"):
        grade_playbooks(lake_of(data_dir), horizon)
