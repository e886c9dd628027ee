"""Batch validation and wire shapes, as pure functions: no server, no database."""

from types import SimpleNamespace

import orjson
import pytest

from batches import validate, wire
from proxy.errors import InvalidRequest, NotFound, RequestTooLarge


class Snapshot:
    """Routes every model except 'unknown' (validate only calls resolve)."""

    def resolve(self, key, model):
        if model == "unknown":
            raise NotFound(f"model: {model} not found", param="model")
        return object()


SNAP, KEY = Snapshot(), object()


def _anthropic(custom_id, **params):
    return {"custom_id": custom_id, "params": {"model": "m", "max_tokens": 10,
                                               "messages": [{"role": "user", "content": "hi"}], **params}}


def test_anthropic_items_are_checked_like_live_requests_and_name_their_custom_id():
    items = validate.anthropic_requests({"requests": [_anthropic("a", stream=True), _anthropic("b")]}, SNAP, KEY)
    assert [i.custom_id for i in items] == ["a", "b"] and "stream" not in items[0].body
    for bad, words in [
        ({"requests": [_anthropic("a"), _anthropic("b", max_tokens="x")]}, ["requests.1", "'b'", "max_tokens"]),
        ({"requests": [_anthropic("a", model="unknown")]}, ["'a'", "unknown"]),
        ({"requests": [_anthropic("a"), _anthropic("a")]}, ["duplicate custom_id 'a'"]),
        ({"requests": [_anthropic("has space")]}, ["custom_id", "1 to 64"]),
        ({"requests": [_anthropic("x" * 65)]}, ["1 to 64"]),
        ({"requests": []}, ["non-empty"]),
        ({"requests": ["nope"]}, ["requests.0"]),
    ]:
        with pytest.raises(InvalidRequest) as err:
            validate.anthropic_requests(bad, SNAP, KEY)
        assert all(w in err.value.message for w in words), (err.value.message, words)


def test_openai_lines_report_the_first_bad_line_with_its_number(settings):
    def line(cid, url="/v1/chat/completions", **body):
        return orjson.dumps({"custom_id": cid, "method": "POST", "url": url,
                             "body": {"model": "m", "messages": [{"role": "user", "content": "x"}], **body}})

    good = validate.openai_lines(line("a") + b"\n\n" + line("b") + b"\n", "/v1/chat/completions", SNAP, KEY)
    assert [i.custom_id for i in good] == ["a", "b"]
    cases = [
        (line("a") + b"\n{not json", 2, "invalid_json_line"),
        (line("a") + b"\n" + line("a"), 2, "duplicate_custom_id"),
        (line("a", url="/v1/embeddings"), 1, "mismatched_endpoint"),
        (line("a") + b"\n" + line("z", model="unknown"), 2, "invalid_request"),
    ]
    for content, number, code in cases:
        bad = validate.openai_lines(content, "/v1/chat/completions", SNAP, KEY)
        assert isinstance(bad, validate.BadItem) and (bad.line, bad.code) == (number, code)
    assert validate.openai_lines(b"\n", "/v1/chat/completions", SNAP, KEY).code == "empty_file"
    settings.GATEWAY_BATCH_MAX_ITEMS = 1
    with pytest.raises(InvalidRequest, match="at most 1 requests"):
        validate.openai_lines(line("a") + b"\n" + line("b"), "/v1/chat/completions", SNAP, KEY)
    settings.GATEWAY_BATCH_MAX_BYTES = 10
    with pytest.raises(RequestTooLarge):
        validate.openai_lines(line("a"), "/v1/chat/completions", SNAP, KEY)


def test_simple_requests_default_their_custom_ids_and_take_either_api():
    api, items = validate.simple_requests({"requests": [
        {"body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}]}, SNAP, KEY)
    assert api == "openai" and items[0].custom_id == "request-0"
    with pytest.raises(InvalidRequest, match="'api'|api:"):
        validate.simple_requests({"api": "gemini", "requests": [{}]}, SNAP, KEY)


def _batch(status, outcome=""):
    return SimpleNamespace(status=status, outcome=outcome)


@pytest.mark.parametrize("status,outcome,expected", [
    ("in_progress", "", "in_progress"), ("canceling", "", "cancelling"), ("ended", "completed", "completed"),
    ("ended", "canceled", "cancelled"), ("ended", "expired", "expired"), ("ended", "failed", "failed"),
])
def test_one_status_becomes_openais_vocabulary(status, outcome, expected):
    assert wire.openai_status(_batch(status, outcome)) == expected


def test_result_lines_in_each_apis_shape():
    ok = SimpleNamespace(id=7, custom_id="a", status="succeeded", result={"id": "msg"}, status_code=200,
                         request_id="req_1", error_type="", error_message="")
    expired = SimpleNamespace(id=8, custom_id="b", status="expired", result=None, status_code=None, request_id="",
                              error_type="", error_message="")
    lost = SimpleNamespace(id=9, custom_id="c", status="errored", result=None, status_code=500, request_id="req_2",
                           error_type="api_error", error_message="answer lost")
    assert wire.anthropic_result_line(ok) == {"custom_id": "a", "result": {"type": "succeeded", "message": {"id": "msg"}}}
    assert wire.anthropic_result_line(expired)["result"] == {"type": "expired"}
    assert wire.anthropic_result_line(lost)["result"]["error"]["error"] == {"type": "api_error", "message": "answer lost"}
    line = wire.openai_result_line(ok)
    assert line["response"] == {"status_code": 200, "request_id": "req_1", "body": {"id": "msg"}} and line["error"] is None
    assert wire.openai_result_line(expired)["error"]["code"] == "batch_expired"
    assert wire.openai_result_line(lost)["response"]["body"]["error"]["message"] == "answer lost"
