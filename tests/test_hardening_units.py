"""Units of issue 14's hardening: the field checks every path runs (proxy/validate.py), the auth-failure windows
(proxy/auth_failures.py) and the mapping of an over-deep body to a 400 (proxy/errors.unexpected)."""

import asyncio

import orjson
import pytest
from django.test import override_settings

from proxy import auth_failures, validate
from proxy.errors import InvalidRequest, unexpected

GOOD = {
    "anthropic": {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stream": True},
    "openai": {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": None, "max_tokens": None},
    "responses": {"model": "m", "input": "x", "stream": False, "max_output_tokens": 20},
}


@pytest.mark.parametrize("api", GOOD)
def test_good_bodies_pass_untouched(api):
    body = dict(GOOD[api], extra={"anything": [1, 2]})
    assert validate.check(api, body) is body


@pytest.mark.parametrize(
    ("api", "field", "value", "param", "wording"),
    [
        ("anthropic", "max_tokens", -5, "max_tokens", "max_tokens: Input should be greater than or equal to 1"),
        ("anthropic", "max_tokens", None, "max_tokens", "max_tokens: Field required"),
        ("anthropic", "stream", "yes", "stream", "stream: Input should be a valid boolean"),
        ("anthropic", "model", "", "model", "model: Input should be at least 1 character long"),
        ("anthropic", "messages", {"role": "user"}, "messages", "messages: Input should be a valid list"),
        ("openai", "stream_options", "yes", "stream_options", "expected an object, but got string"),
        ("openai", "max_completion_tokens", 1.5, "max_completion_tokens", "expected an integer, but got number"),
        ("openai", "messages", [{"role": "user"}, 7], "messages[1]", "expected an object, but got integer"),
        ("openai", "model", None, "model", "Missing required parameter: 'model'."),
        ("responses", "input", {"a": 1}, "input", "expected a string or an array, but got object"),
        ("responses", "max_output_tokens", True, "max_output_tokens", "expected an integer, but got boolean"),
    ],
)
def test_wrong_fields_are_named_in_the_apis_wording(api, field, value, param, wording):
    with pytest.raises(InvalidRequest) as caught:
        validate.check(api, {**GOOD[api], field: value})
    assert caught.value.param == param and wording in caught.value.message


def test_count_tokens_needs_no_max_tokens():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert validate.check("anthropic", body, count_tokens=True) is body


def test_a_body_too_deep_to_write_is_a_400_not_a_500():
    deep = orjson.loads(b"[" * 300 + b"]" * 300)  # orjson reads 1024 levels, writes 254
    with pytest.raises(TypeError) as caught:
        orjson.dumps(deep)
    err = unexpected(caught.value, "test")
    assert isinstance(err, InvalidRequest) and err.status == 400 and "nested too deeply" in err.message
    assert unexpected(ValueError("boom"), "test").status == 500


@override_settings(REDIS_URL="", GATEWAY_AUTH_FAILURE_LIMIT=3, GATEWAY_AUTH_FAILURE_WINDOW_SECONDS=60)
def test_an_address_is_blocked_at_the_limit_for_a_window(monkeypatch):
    auth_failures.reset_for_tests()
    now = [1000.0]
    monkeypatch.setattr(auth_failures.time, "monotonic", lambda: now[0])
    for _ in range(2):
        asyncio.run(auth_failures.record("203.0.113.9", "invalid"))
    assert not auth_failures.blocked("203.0.113.9")
    asyncio.run(auth_failures.record("203.0.113.9", "missing"))
    assert auth_failures.blocked("203.0.113.9") and not auth_failures.blocked("203.0.113.10")
    asyncio.run(auth_failures.record("203.0.113.9", "throttled"))  # refusals while blocked do not extend it
    now[0] += 61
    assert not auth_failures.blocked("203.0.113.9")
    asyncio.run(auth_failures.record("203.0.113.9", "invalid"))  # a new window starts at 1
    assert not auth_failures.blocked("203.0.113.9")
    auth_failures.reset_for_tests()


@override_settings(REDIS_URL="", GATEWAY_AUTH_FAILURE_LIMIT=0)
def test_a_limit_of_zero_turns_throttling_off():
    auth_failures.reset_for_tests()
    for _ in range(50):
        asyncio.run(auth_failures.record("203.0.113.11", "invalid"))
    assert not auth_failures.blocked("203.0.113.11")


@pytest.mark.parametrize("api", ["anthropic", "openai", "responses"])
def test_an_upstream_error_page_that_is_not_json_is_rendered_not_relayed(api):
    from proxy import formats
    from proxy.errors import RawError, UpstreamError

    page = RawError(api=api, status=500, body=b"500 Internal Server Error\n\nServer got itself in trouble", headers={})
    status, body, _ = formats.get(api).render_error(UpstreamError("upstream failed", raw=page))
    assert isinstance(orjson.loads(body), dict) and b"got itself" not in body
    same = RawError(api=api, status=529, body=b'{"type":"error","error":{"type":"overloaded_error","message":"x"}}',
                    headers={})
    assert formats.get(api).render_error(UpstreamError("busy", raw=same))[1] == same.body  # JSON: byte for byte


def test_previous_response_id_must_be_a_string():
    with pytest.raises(InvalidRequest) as caught:
        validate.check("responses", {**GOOD["responses"], "previous_response_id": {"id": 1}})
    assert caught.value.param == "previous_response_id"
