"""The Grok client against the fake OpenAI-compatible server, over real sockets."""

from __future__ import annotations

import json

import pytest
import requests

from tests.playbooks.conftest import CANARY, FAST_RETRY, guard_of, llm_config
from vectorflow.errors import LlmRejected, LlmUnavailable, TransientError
from vectorflow.playbooks.client import GrokClient
from vectorflow.playbooks.contract import SCHEMA_NAME, playbook_json_schema
from vectorflow.playbooks.guard import TABLE
from vectorflow.resilience.failures import Facts, Response, retry_after
from vectorflow.sim.llm import Reply

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": '{"market": {}}'}]


@pytest.fixture
def client(llm, tmp_path):
    """Make a client of the fake LLM (config changes as keywords), through a guard of its own."""
    return lambda **changes: GrokClient(
        llm_config(llm, **changes), CANARY, guard_of(tmp_path), FAST_RETRY
    )


def test_request_carries_model_and_strict_schema_and_the_key_only_in_its_header(llm, client):
    llm.script("valid")
    answer = client(model="grok-4-1-fast-reasoning").complete(MESSAGES)
    assert json.loads(answer.content)["bias"] in ("long", "short")
    assert answer.tokens_in > 0 and answer.tokens_out > 0
    (request,) = llm.chat_requests
    body = request["json"]
    assert body["model"] == "grok-4-1-fast-reasoning"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == SCHEMA_NAME
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["response_format"]["json_schema"]["schema"] == playbook_json_schema()
    assert body["temperature"] <= 0.2 and body["max_tokens"] >= 4096
    assert body["messages"] == MESSAGES
    assert request["headers"]["authorization"] == f"Bearer {CANARY}"
    assert CANARY not in request["body"] and CANARY not in request["path"]


def test_429_waits_for_retry_after_then_succeeds(llm, client):
    llm.script("rate_limited", "valid")
    assert client().complete(MESSAGES).content
    first, second = llm.chat_requests
    assert second["time"] - first["time"] >= 1.0  # Retry-After: 1


def test_5xx_is_retried_a_bounded_number_of_times(llm, client):
    llm.script("server_error", "server_error", "server_error", "valid")
    with pytest.raises(LlmUnavailable, match="HTTP 500"):
        client().complete(MESSAGES)
    assert len(llm.chat_requests) == 3  # attempts, then the error


def test_an_answer_slower_than_the_read_timeout_is_retried(llm, client):
    llm.script(Reply(delay=1.5), "valid")
    answer = client(read_timeout_seconds=0.5).complete(MESSAGES)
    assert answer.content and len(llm.chat_requests) == 2


def test_401_is_permanent_tried_once_and_the_echoed_key_is_cut_out(llm, client):
    llm.script("unauthorized", "valid")
    with pytest.raises(LlmRejected, match="HTTP 401") as info:
        client().complete(MESSAGES)
    assert CANARY not in str(info.value) and "**********" in str(info.value)
    assert len(llm.chat_requests) == 1


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_client_errors_are_permanent(llm, client, status):
    llm.script(Reply(status=status, body='{"error": "no"}'))
    with pytest.raises(LlmRejected, match=f"HTTP {status}"):
        client().complete(MESSAGES)
    assert len(llm.chat_requests) == 1


def test_model_check_names_a_model_the_api_does_not_offer(llm, client):
    client().check_model()  # grok-4.3 is offered
    with pytest.raises(LlmRejected, match="model 'grok-0-retired' is not offered") as info:
        client(model="grok-0-retired").check_model()
    assert "grok-4.3" in str(info.value)  # what is offered instead
    assert all(r["path"] == "/v1/models" for r in llm.requests)


def test_unreachable_endpoint_is_transient(tmp_path):
    from vectorflow.settings.playbooks import PlaybookSettings

    config = PlaybookSettings(base_url="http://127.0.0.1:9/v1", connect_timeout_seconds=0.5)
    with pytest.raises(LlmUnavailable, match="ConnectionError"):
        GrokClient(config, CANARY, guard_of(tmp_path), FAST_RETRY).complete(MESSAGES)


def test_retry_after_as_seconds_or_http_date():
    assert retry_after("2") == 2.0
    assert retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0) == 5.0
    assert retry_after(None) is None and retry_after("soon") is None


def test_a_retry_after_longer_than_the_cap_fails_at_once(llm, client):
    llm.script("rate_limited", "valid")  # Retry-After: 1
    with pytest.raises(TransientError, match="longer than the 0.5 s a call may wait"):
        client(retry_after_cap_seconds=0.5).complete(MESSAGES)
    assert len(llm.chat_requests) == 1


@pytest.mark.parametrize(
    "status,verdict",
    [(429, "rate_limited"), (408, "transient"), (409, "transient"), (503, "transient"),
     (524, "transient"), (501, "permanent"), (400, "permanent"), (401, "permanent")],
)  # fmt: skip
def test_the_llm_table_reads_the_status_first(status, verdict):
    response = Response("http://x/v1/models", status, {"Retry-After": "3"}, "no")
    facts = Facts.of("grok", requests.HTTPError("x"), response)
    assert TABLE.rule_for(facts).verdict == verdict
    assert facts.retry_after == 3.0
    network = Facts.of("grok", requests.ConnectionError("refused"), None)
    assert TABLE.rule_for(network).verdict == "transient"
