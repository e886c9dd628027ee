"""formats.openai render_error / parse_error (docs/translation.md §4.4, §5.12)."""

import json

import pytest

from proxy.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    RawError,
    RequestTooLarge,
    UpstreamError,
)
from proxy.formats.openai import parse_error, render_error


def rendered(err: GatewayError) -> tuple[int, dict, dict]:
    status, body, headers = render_error(err)
    return status, json.loads(body), headers


@pytest.mark.parametrize(
    "err, status, type_, code",
    [
        (InvalidRequest("bad", param="messages[0].role"), 400, "invalid_request_error", None),
        (AuthenticationFailed("no key"), 401, "invalid_request_error", "invalid_api_key"),
        (UpstreamError("pay up", kind="billing"), 429, "insufficient_quota", "insufficient_quota"),
        (PermissionDenied("no"), 403, "permission_error", None),
        (NotFound("no model"), 404, "invalid_request_error", "model_not_found"),
        (RequestTooLarge("big"), 413, "invalid_request_error", None),
        (RateLimited("slow down", retry_after="7"), 429, "rate_limit_error", "rate_limit_exceeded"),
        (UpstreamError("boom"), 500, "server_error", None),
        (UpstreamError("busy", kind="overloaded"), 503, "server_error", "server_is_overloaded"),
        (UpstreamError("slow", kind="timeout"), 504, "server_error", None),
    ],
)
def test_every_kind_renders_with_all_four_keys(err, status, type_, code):
    got_status, body, _ = rendered(err)
    assert got_status == status
    assert body == {"error": {"message": err.message, "type": type_, "param": err.param, "code": code}}


def test_retry_after_and_should_retry_headers():
    assert rendered(RateLimited("slow down", retry_after="7"))[2] == {"retry-after": "7"}
    for err in (InvalidRequest("x"), AuthenticationFailed("x"), PermissionDenied("x"), NotFound("x")):
        assert rendered(err)[2] == {"x-should-retry": "false"}
    assert rendered(UpstreamError("x"))[2] == {}


def test_explicit_code_wins():
    err = UpstreamError("too long", kind="invalid_request", code="context_length_exceeded")
    assert rendered(err)[1]["error"]["code"] == "context_length_exceeded"


def test_same_format_upstream_error_goes_back_byte_for_byte():
    body = b'{"error": {"message": "x",  "type":"t"}}'
    raw = RawError(api="openai", status=429, body=body, headers={"x-request-id": "r1"})
    assert render_error(UpstreamError("x", kind="rate_limit", raw=raw)) == (429, raw.body, {"x-request-id": "r1"})


def test_anthropic_upstream_error_is_translated_not_copied():
    raw = RawError(api="anthropic", status=529, body=b'{"type":"error"}', headers={"retry-after-ms": "1000"})
    status, body, headers = rendered(UpstreamError("Overloaded", kind="overloaded", raw=raw, retry_after="1"))
    assert status == 503 and body["error"]["code"] == "server_is_overloaded"
    assert headers == {"retry-after": "1", "retry-after-ms": "1000"}


def openai_error(message, type_="invalid_request_error", code=None, param=None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


@pytest.mark.parametrize(
    "status, kind",
    [(400, "invalid_request"), (401, "authentication"), (402, "billing"), (403, "permission"), (404, "not_found"),
     (413, "request_too_large"), (429, "rate_limit"), (500, "api_error"), (502, "api_error"), (503, "overloaded"),
     (504, "timeout"), (520, "api_error"), (408, "timeout"), (409, "api_error")],
)
def test_parse_error_kind_by_status(status, kind):
    err = parse_error(status, openai_error("m"), {})
    assert (err.kind, err.message) == (kind, "m")


def test_insufficient_quota_429_is_billing():
    body = openai_error("You exceeded your current quota", "insufficient_quota", "insufficient_quota")
    err = parse_error(429, body, {})
    assert err.kind == "billing"


def test_raw_keeps_body_status_and_useful_headers():
    headers = {"retry-after": "3", "x-request-id": "req_9", "content-type": "application/json", "set-cookie": "x"}
    body = openai_error("slow", "rate_limit_error", "rate_limit_exceeded")
    err = parse_error(429, body, headers)
    assert err.retry_after == "3"
    kept = {"retry-after": "3", "x-request-id": "req_9"}
    assert err.raw == RawError(api="openai", status=429, body=body, headers=kept)
    assert render_error(err) == (429, body, {"retry-after": "3", "x-request-id": "req_9"})


def test_context_overflow_uses_the_wording_claude_code_recognises_P25():
    message = ("This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 "
               "tokens. Please reduce the length of the messages.")
    err = parse_error(400, openai_error(message, code="context_length_exceeded"), {})
    assert (err.kind, err.code) == ("invalid_request", "context_length_exceeded")
    assert err.message == "prompt is too long: 130512 tokens > 128000 maximum"


def test_context_overflow_with_prompt_and_completion_numbers_P25():
    message = ("This model's maximum context length is 4097 tokens, however you requested 4200 tokens "
               "(3200 in your prompt; 1000 for the completion). Please reduce your prompt; or completion length.")
    err = parse_error(400, openai_error(message), {})
    assert err.code == "context_length_exceeded"
    assert err.message.startswith("input length and `max_tokens` exceed context limit: 3200 + 1000 > 4097")
    deepseek = ("This model's maximum context length is 65536 tokens. However, you requested 70000 tokens "
                "(69000 in the messages, 1000 in the completion).")
    assert parse_error(400, openai_error(deepseek), {}).message == "prompt is too long: 69000 tokens > 65536 maximum"


def test_context_overflow_without_numbers_keeps_the_message():
    message = "Your input exceeds the context window of this model."
    err = parse_error(400, openai_error(message, code="context_length_exceeded"), {})
    assert (err.code, err.message) == ("context_length_exceeded", message)


def test_non_json_and_odd_bodies_are_tolerated():
    assert parse_error(502, b"<html>Bad Gateway</html>", {}).message == "<html>Bad Gateway</html>"
    assert parse_error(500, b"", {}).message
    assert parse_error(400, b'{"error": "plain string"}', {}).message == "plain string"
    vllm = b'{"object": "error", "message": "bad param", "type": "BadRequestError", "param": null, "code": 400}'
    err = parse_error(400, vllm, {})
    assert (err.message, err.code) == ("bad param", None)
