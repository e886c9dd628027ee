"""Pass-through streaming (docs/translation.md §5.0 step 2): bytes relayed unchanged, watched for usage, end and
errors."""

import random

import orjson
import pytest

from proxy.canonical import Usage
from proxy.formats import anthropic

from .test_anthropic_stream import MESSAGE_START, MESSAGE_STOP, RECORDED

ERROR_EVENT = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
FINAL_USAGE = Usage(input_tokens=472, output_tokens=189, cache_read_tokens=2048, cache_write_tokens=10)


def relay(chunks) -> tuple[anthropic.Relay, bytes]:
    watcher = anthropic.Relay({"model": "claude-x", "stream": True})
    forwarded = b"".join(watcher.feed(chunk) for chunk in chunks) + watcher.finish()
    return watcher, forwarded


def test_relay_forwards_each_chunk_unchanged_and_extracts_usage():
    rng = random.Random(3)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(RECORDED)), 20))
        chunks = [RECORDED[a:b] for a, b in zip([0, *cuts], [*cuts, len(RECORDED)])]
        watcher = anthropic.Relay({})
        assert all(watcher.feed(chunk) is chunk for chunk in chunks)
        assert watcher.finish() == b""
        assert (watcher.usage, watcher.complete, watcher.error) == (FINAL_USAGE, True, None)


def test_relay_works_for_a_split_at_every_byte_boundary():
    for cut in range(1, len(RECORDED), 7):
        watcher, forwarded = relay([RECORDED[:cut], RECORDED[cut:]])
        assert forwarded == RECORDED
        assert watcher.usage == FINAL_USAGE and watcher.complete


def test_relay_usage_after_message_start_only():
    watcher, _ = relay([MESSAGE_START])
    assert watcher.usage == Usage(input_tokens=472, output_tokens=2, cache_read_tokens=2048, cache_write_tokens=10)


def test_relay_records_an_error_event_and_still_forwards_it():
    watcher, forwarded = relay([MESSAGE_START, ERROR_EVENT])
    assert forwarded == MESSAGE_START + ERROR_EVENT
    assert not watcher.complete
    assert (watcher.error.kind, watcher.error.status, watcher.error.message) == ("overloaded", 529, "Overloaded")
    assert watcher.error.raw.api == "anthropic"


def test_relay_flags_a_stream_that_ends_before_message_stop():
    watcher, _ = relay([RECORDED[: RECORDED.index(b"event: message_stop")]])
    assert not watcher.complete
    assert watcher.error.kind == "api_error" and "message_stop" in watcher.error.message
    assert watcher.usage == FINAL_USAGE  # what was used is still known, for billing


def test_relay_counts_a_final_event_without_its_blank_line():
    watcher, _ = relay([MESSAGE_START, MESSAGE_STOP.rstrip(b"\n")])
    assert watcher.complete and watcher.error is None


def test_relay_only_decodes_usage_and_error_events(monkeypatch):
    decoded = []
    real_loads = orjson.loads
    monkeypatch.setattr(orjson, "loads", lambda data: decoded.append(bytes(data)) or real_loads(data))
    relay([RECORDED])
    assert [real_loads(d)["type"] for d in decoded] == ["message_start", "message_delta"]


@pytest.mark.parametrize("garbage", [b"event: message_delta\ndata: {oops\n\n", b"event: message_start\ndata: []\n\n"])
def test_relay_survives_malformed_usage_events(garbage):
    watcher, forwarded = relay([garbage, MESSAGE_START, MESSAGE_STOP])
    assert forwarded.startswith(garbage) and watcher.complete
