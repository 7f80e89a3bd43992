"""The Grok client against the fake OpenAI-compatible server, over real sockets."""

from __future__ import annotations

import json

import pytest

from tests.playbooks.conftest import CANARY, FAST_RETRY, llm_config
from vectorflow.playbooks.client import GrokClient, LlmRejected, retry_after_seconds
from vectorflow.playbooks.contract import SCHEMA_NAME, playbook_json_schema
from vectorflow.playbooks.retry import LlmUnavailable
from vectorflow.sim.llm import Reply

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": '{"market": {}}'}]


def client(llm, **changes) -> GrokClient:
    return GrokClient(llm_config(llm, **changes), CANARY, FAST_RETRY)


def test_request_carries_model_and_strict_schema_and_the_key_only_in_its_header(llm):
    llm.script("valid")
    answer = client(llm, model="grok-4-1-fast-reasoning").complete(MESSAGES)
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


def test_429_waits_for_retry_after_then_succeeds(llm):
    llm.script("rate_limited", "valid")
    assert client(llm).complete(MESSAGES).content
    first, second = llm.chat_requests
    assert second["time"] - first["time"] >= 1.0  # Retry-After: 1


def test_5xx_is_retried_a_bounded_number_of_times(llm):
    llm.script("server_error", "server_error", "server_error", "valid")
    with pytest.raises(LlmUnavailable, match="HTTP 500"):
        client(llm).complete(MESSAGES)
    assert len(llm.chat_requests) == 3  # attempts, then the error


def test_an_answer_slower_than_the_read_timeout_is_retried(llm):
    llm.script(Reply(delay=1.5), "valid")
    answer = client(llm, read_timeout_seconds=0.5).complete(MESSAGES)
    assert answer.content and len(llm.chat_requests) == 2


def test_401_is_permanent_tried_once_and_the_echoed_key_is_cut_out(llm):
    llm.script("unauthorized", "valid")
    with pytest.raises(LlmRejected, match="HTTP 401") as info:
        client(llm).complete(MESSAGES)
    assert CANARY not in str(info.value) and "**********" in str(info.value)
    assert len(llm.chat_requests) == 1


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_client_errors_are_permanent(llm, status):
    llm.script(Reply(status=status, body='{"error": "no"}'))
    with pytest.raises(LlmRejected, match=f"HTTP {status}"):
        client(llm).complete(MESSAGES)
    assert len(llm.chat_requests) == 1


def test_model_check_names_a_model_the_api_does_not_offer(llm):
    client(llm).check_model()  # grok-4.3 is offered
    with pytest.raises(LlmRejected, match="model 'grok-0-retired' is not offered") as info:
        client(llm, model="grok-0-retired").check_model()
    assert "grok-4.3" in str(info.value)  # what is offered instead
    assert all(r["path"] == "/v1/models" for r in llm.requests)


def test_unreachable_endpoint_is_transient():
    from vectorflow.settings.playbooks import PlaybookSettings

    config = PlaybookSettings(base_url="http://127.0.0.1:9/v1", connect_timeout_seconds=0.5)
    with pytest.raises(LlmUnavailable, match="ConnectionError"):
        GrokClient(config, CANARY, FAST_RETRY).complete(MESSAGES)


def test_retry_after_as_seconds_or_http_date():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0) == 5.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
