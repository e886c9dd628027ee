"""formats.openai pass-through: passthrough_request and Relay (docs/translation.md §5.0)."""

import json

from proxy.canonical import TargetOptions, Usage
from proxy.formats.openai import Relay, passthrough_request

TARGET = TargetOptions(remote_model="deepseek-chat")


def test_passthrough_swaps_only_the_model_and_keeps_key_order():
    body = {"messages": [], "model": "alias", "x_vendor": {"a": 1}, "temperature": 0}
    forwarded = passthrough_request(body, TARGET)
    assert list(forwarded) == ["messages", "model", "x_vendor", "temperature"]
    assert forwarded == {**body, "model": "deepseek-chat"}
    assert body["model"] == "alias"  # the caller's dict is untouched


def test_passthrough_stream_always_asks_for_usage_keeping_other_options():
    body = {"model": "alias", "stream": True, "stream_options": {"include_obfuscation": False}, "messages": []}
    forwarded = passthrough_request(body, TARGET)
    assert forwarded["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert body["stream_options"] == {"include_obfuscation": False}
    assert "stream_options" not in passthrough_request({"model": "a", "messages": []}, TARGET)


def frame(obj) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode()) + b"\n\n"


USAGE = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25, "prompt_tokens_details": {"cached_tokens": 8}}
CONTENT = frame({"id": "c1", "choices": [{"index": 0, "delta": {"content": "h\u00e9 \"usage\""}}], "usage": None})
FINISH = frame({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None})
USAGE_CHUNK = frame({"id": "c1", "choices": [], "usage": USAGE})
DONE = frame(b"[DONE]")
STREAM = b": keep-alive\n\n" + CONTENT + FINISH + USAGE_CHUNK + DONE


def relay(req_body: dict, stream: bytes, step: int) -> tuple[Relay, bytes]:
    r = Relay(req_body)
    out = b"".join(r.feed(stream[i : i + step]) for i in range(0, len(stream), step))
    return r, out + r.finish()


def test_relay_forwards_bytes_unchanged_when_the_client_asked_for_usage():
    for step in (1, 7, len(STREAM)):
        r, out = relay({"stream": True, "stream_options": {"include_usage": True}}, STREAM, step)
        assert out == STREAM
        assert r.usage == Usage(input_tokens=12, output_tokens=5, cache_read_tokens=8)
        assert r.complete and r.error is None


def test_relay_drops_only_the_usage_chunk_when_not_asked():
    for step in (1, 5, len(STREAM)):
        r, out = relay({"stream": True}, STREAM, step)
        assert out == CONTENT + FINISH + DONE
        assert r.usage.output_tokens == 5 and r.complete


def test_relay_keeps_usage_on_a_chunk_with_choices():
    finish_choice = {"index": 0, "delta": {}, "finish_reason": "stop"}
    finish_with_usage = frame({"id": "c1", "choices": [finish_choice], "usage": USAGE})
    r, out = relay({"stream": True}, CONTENT + finish_with_usage + DONE, 3)
    assert out == CONTENT + finish_with_usage + DONE
    assert r.usage.output_tokens == 5


def test_relay_records_an_error_object_and_forwards_it():
    error = frame({"error": {"message": "overloaded", "type": "server_error", "code": "server_is_overloaded"}})
    r, out = relay({"stream": True}, CONTENT + error, 4)
    assert out == CONTENT + error
    assert r.error.kind == "overloaded" and not r.complete


def test_relay_truncated_stream_is_an_error():
    r, out = relay({"stream": True, "stream_options": {"include_usage": True}}, CONTENT + FINISH[:20], 6)
    assert out == CONTENT + FINISH[:20]
    assert not r.complete and "before [DONE]" in r.error.message
