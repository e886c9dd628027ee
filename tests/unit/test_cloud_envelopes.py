"""The cloud envelopes' pure parts: the one model-id rule (proxy/formats/envelope.py), the AWS event-stream
framing and the Bedrock relay (proxy/formats/bedrock), Bedrock's beta merge, and the Claude-style model list of a
routing snapshot (proxy/routing.py)."""

import random
import zlib

import pytest

from proxy.formats import bedrock, vertex
from proxy.formats.bedrock import eventstream
from proxy.formats.envelope import anthropic_model_name
from proxy.routing import Route, Snapshot, display_name

from .test_anthropic_stream import RECORDED


@pytest.mark.parametrize("model_id, name", [
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),
    ("anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet-20241022"),
    ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"),
    ("apac.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1-20250805"),
    ("us.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
    ("arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
     "claude-sonnet-4-5-20250929"),
    ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5-20250929"),
    ("claude-opus-4-6", "claude-opus-4-6"),
    ("gw-anthropic", "gw-anthropic"),  # a gateway alias passes as it is
])  # fmt: skip
def test_model_ids_map_onto_anthropic_names(model_id, name):
    assert anthropic_model_name(model_id) == name


def test_event_stream_frames_round_trip_split_anywhere():
    frames = eventstream.chunk(b'{"type":"ping"}') + eventstream.exception("throttlingException", "slow down")
    decoder, got = eventstream.Decoder(), []
    rng = random.Random(7)
    at = 0
    while at < len(frames):
        step = rng.randint(1, 9)
        got += decoder.feed(frames[at : at + step])
        at += step
    (chunk_headers, chunk_payload), (error_headers, error_payload) = got
    assert chunk_headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    assert eventstream.event_json(chunk_headers, chunk_payload) == b'{"type":"ping"}'
    assert error_headers[":exception-type"] == "throttlingException" and b"slow down" in error_payload


def test_event_stream_prelude_and_crcs():
    frame = eventstream.chunk(b"{}")
    total, headers_length = int.from_bytes(frame[:4], "big"), int.from_bytes(frame[4:8], "big")
    assert total == len(frame) and headers_length > 0
    assert int.from_bytes(frame[8:12], "big") == zlib.crc32(frame[:8])
    assert int.from_bytes(frame[-4:], "big") == zlib.crc32(frame[:-4])
    with pytest.raises(ValueError):
        eventstream.Decoder().feed(frame[:-1] + bytes([frame[-1] ^ 1]))


def test_bedrock_relay_frames_each_event_and_watches_usage():
    relay = bedrock.Relay({})
    out = b"".join(relay.feed(RECORDED[i : i + 50]) for i in range(0, len(RECORDED), 50)) + relay.finish()
    messages = eventstream.Decoder().feed(out)
    types = [h[":event-type"] for h, _ in messages]
    assert types.count("chunk") == RECORDED.count(b"event: ") - RECORDED.count(b"event: ping")
    assert relay.complete and relay.error is None and relay.usage.output_tokens > 0


def test_bedrock_body_betas_join_the_header_once():
    body = {"anthropic_version": "bedrock-2023-05-31", "anthropic_beta": ["b1", "claude-code-20250219"],
            "messages": [], "max_tokens": 5}  # fmt: skip
    sent = {"anthropic-beta": "claude-code-20250219"}
    body, headers = bedrock.envelope(body, "us.anthropic.claude-x-v1:0", True, sent)
    assert headers["anthropic-beta"] == "claude-code-20250219,b1"
    assert body == {"messages": [], "max_tokens": 5, "model": "claude-x", "stream": True}
    body, same = vertex.envelope({"anthropic_version": "vertex-2023-10-16", "stream": True}, "claude-x@1", False, {})
    assert body == {"model": "claude-x-1"} and same == {}


def _route(alias: str) -> Route:
    return Route(alias=alias, display_name=alias.upper(), default_max_tokens=None, max_output_tokens=None,
                 targets=("t",), created_at=0)  # fmt: skip


def test_claude_models_for_discovery():
    class Key:
        project_models, key_models = (), ("claude-*", "sonnet")

    snapshot = Snapshot(exact={"sonnet": _route("sonnet"), "gpt": _route("gpt")}, patterns=[_route("claude-*")],
                        prices={"claude-opus-4-6": [], "gpt-5": [], "claude-3-5-haiku-20241022": []})  # fmt: skip
    listed = {r.alias: r.display_name for r in snapshot.claude_models(Key)}
    assert listed == {"anthropic/sonnet": "SONNET", "claude-3-5-haiku-20241022": "Claude 3.5 Haiku",
                      "claude-opus-4-6": "Claude Opus 4.6"}  # fmt: skip
    assert snapshot.resolve(Key, "anthropic/sonnet").alias == "sonnet"


def test_display_names():
    assert display_name("claude-sonnet-4-5-20250929") == "Claude Sonnet 4.5"
    assert display_name("claude-opus-4-1") == "Claude Opus 4.1"


def test_a_cloud_model_id_without_a_price_of_its_own_is_priced_as_the_anthropic_model_it_names():
    from datetime import date

    from proxy.routing import Snapshot

    anthropic_rates, regional_rates = object(), object()  # Snapshot.price hands back whatever rates it holds
    snap = Snapshot(exact={}, patterns=[], prices={
        "claude-sonnet-4-5-20250929": [(date(2025, 9, 29), anthropic_rates)],
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0": [(date(2025, 9, 29), regional_rates)],
    })  # fmt: skip
    today = date(2026, 12, 7)
    assert snap.price("us.anthropic.claude-sonnet-4-5-20250929-v1:0", today) is anthropic_rates
    assert snap.price("claude-sonnet-4-5@20250929", today) is anthropic_rates
    assert snap.price("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", today) is regional_rates  # its own row wins
    assert snap.price("us.anthropic.claude-sonnet-4-5-20250929-v1:0", date(2025, 1, 1)) is None  # not yet in force
    assert snap.price("gpt-4o", today) is None
