"""Anthropic error JSON, both directions (docs/translation.md §2.5, §5.12)."""

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
from proxy.formats import anthropic


@pytest.mark.parametrize(
    "error, status, error_type",
    [
        (InvalidRequest("bad", param="x"), 400, "invalid_request_error"),
        (AuthenticationFailed("who"), 401, "authentication_error"),
        (UpstreamError("pay", kind="billing"), 402, "billing_error"),
        (PermissionDenied("no"), 403, "permission_error"),
        (NotFound("model x"), 404, "not_found_error"),
        (RequestTooLarge("big"), 413, "request_too_large"),
        (RateLimited("slow down"), 429, "rate_limit_error"),
        (UpstreamError("boom", kind="api_error"), 500, "api_error"),
        (UpstreamError("busy", kind="overloaded", status=503), 529, "overloaded_error"),
        (UpstreamError("slow", kind="timeout"), 504, "timeout_error"),
    ],
)
def test_every_error_kind_renders_with_its_status_and_type(error, status, error_type):
    got_status, body, _ = anthropic.render_error(error)
    assert got_status == status
    assert json.loads(body) == {"type": "error", "error": {"type": error_type, "message": error.message}}


def test_generic_server_error_keeps_its_own_status():
    status, body, _ = anthropic.render_error(UpstreamError("bad gateway", kind="api_error", status=502))
    assert status == 502 and json.loads(body)["error"]["type"] == "api_error"
    status, body, _ = anthropic.render_error(GatewayError("odd", kind="weird", status=503))
    assert status == 503 and json.loads(body)["error"]["type"] == "api_error"


@pytest.mark.parametrize(
    "error", [InvalidRequest("x"), AuthenticationFailed("x"), PermissionDenied("x"), NotFound("x")]
)
def test_non_retryable_errors_say_x_should_retry_false(error):
    assert anthropic.render_error(error)[2] == {"x-should-retry": "false"}


def test_retry_after_is_passed_on():
    _, _, headers = anthropic.render_error(RateLimited("slow", retry_after="7"))
    assert headers == {"retry-after": "7"}
    assert anthropic.render_error(UpstreamError("busy", kind="overloaded"))[2] == {}


def test_context_overflow_message_is_kept_verbatim_P25():
    error = UpstreamError("prompt is too long: 250000 tokens > 200000 maximum", kind="invalid_request",
                          code="context_length_exceeded")
    status, body, _ = anthropic.render_error(error)
    assert status == 400 and json.loads(body)["error"]["message"] == error.message


def test_anthropic_upstream_error_goes_back_byte_for_byte():
    raw_body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}'
    error = anthropic.parse_error(529, raw_body, {"request-id": "req_1", "x-should-retry": "true", "server": "cf"})
    assert anthropic.render_error(error) == (529, raw_body, {"request-id": "req_1", "x-should-retry": "true"})


def test_raw_error_from_another_format_is_translated_not_passed_through():
    raw = RawError(api="openai", status=429, body=b'{"error":{"message":"quota"}}', headers={})
    status, body, _ = anthropic.render_error(UpstreamError("quota", kind="rate_limit", raw=raw))
    assert status == 429 and json.loads(body)["error"]["type"] == "rate_limit_error"


# --- parse_error --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, error_type, kind, mapped_status",
    [
        (400, "invalid_request_error", "invalid_request", 400),
        (401, "authentication_error", "authentication", 401),
        (402, "billing_error", "billing", 402),
        (403, "permission_error", "permission", 403),
        (404, "not_found_error", "not_found", 404),
        (413, "request_too_large", "request_too_large", 413),
        (429, "rate_limit_error", "rate_limit", 429),
        (500, "api_error", "api_error", 500),
        (529, "overloaded_error", "overloaded", 529),
        (504, "timeout_error", "timeout", 504),
    ],
)
def test_parse_error_reads_anthropic_error_types(status, error_type, kind, mapped_status):
    body = json.dumps({"type": "error", "error": {"type": error_type, "message": "m"}}).encode()
    error = anthropic.parse_error(status, body, {})
    assert (error.kind, error.status, error.message) == (kind, mapped_status, "m")
    assert error.raw == RawError("anthropic", status, body, {})


@pytest.mark.parametrize(
    "status, kind, mapped_status",
    [(400, "invalid_request", 400), (401, "authentication", 401), (402, "billing", 402), (403, "permission", 403),
     (404, "not_found", 404), (413, "request_too_large", 413), (429, "rate_limit", 429), (503, "overloaded", 529),
     (529, "overloaded", 529), (504, "timeout", 504), (502, "api_error", 502), (418, "invalid_request", 418)],
)
def test_parse_error_falls_back_to_status_for_non_json_bodies(status, kind, mapped_status):
    error = anthropic.parse_error(status, b"<html><body>\n  upstream   trouble\n</body></html>", {})
    assert (error.kind, error.status) == (kind, mapped_status)
    assert error.message == "<html><body> upstream trouble </body></html>"


def test_parse_error_keeps_retry_headers_and_drops_the_rest():
    headers = {"retry-after": "12", "retry-after-ms": "12000", "request-id": "req_9", "x-should-retry": "true",
               "content-type": "application/json", "set-cookie": "x"}
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}'
    error = anthropic.parse_error(429, body, headers)
    assert error.retry_after == "12"
    assert error.raw.headers == {
        "retry-after": "12", "retry-after-ms": "12000", "request-id": "req_9", "x-should-retry": "true"
    }




def test_context_overflow_is_tagged_for_the_openai_renderer_P25():
    body = (
        b'{"type":"error","error":{"type":"invalid_request_error",'
        b'"message":"prompt is too long: 210000 tokens > 200000 maximum"}}'
    )
    error = anthropic.parse_error(400, body, {})
    assert error.code == "context_length_exceeded"
    assert anthropic.parse_error(400, b'{"error":{"type":"invalid_request_error","message":"bad"}}', {}).code is None


def test_empty_body_gets_a_generic_message():
    assert anthropic.parse_error(502, b"", {}).message == "upstream returned HTTP 502"
