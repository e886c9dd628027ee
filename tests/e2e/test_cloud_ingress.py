"""The Bedrock- and Vertex-shaped ingresses (proxy/formats/bedrock, proxy/formats/vertex) over real HTTP, with the
requests Claude Code 2.1.197 sent in each mode (tests/fixtures/claude-code-cloud/) replayed byte for byte but for
the model in the path: the envelope stays at the gateway, `anthropic_beta` joins the header an Anthropic upstream
gets, the stream is AWS event-stream frames (Bedrock) or SSE (Vertex), errors are Anthropic's JSON (Bedrock: with
the message at the top level too, and as an exception frame mid-stream), and Bedrock's inference-profile list
names the key's Claude models. tests/e2e/test_claude_code_cloud.py runs the real CLI through the same paths."""

import json
from pathlib import Path

import httpx
import orjson
import pytest

from proxy.formats.bedrock import eventstream

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude-code-cloud"
BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"
BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14,tool-search-tool-2025-10-19"


def replay(world, name: str, model: str, prompt: str, key: str = "alpha", **changes) -> httpx.Response:
    """The captured request `name` with its model id in the path replaced by `model` and its last user text by
    `prompt` (the fake's script)."""
    capture = json.loads((FIXTURES / name).read_text())
    body = {**capture["body"], **changes}
    body["messages"] = [*body["messages"][:-1], {"role": "user", "content": prompt}]
    path = capture["path"].replace(BEDROCK_MODEL, model).replace(VERTEX_MODEL, model)
    headers = {k: v for k, v in capture["headers"].items() if k not in ("host", "content-length", "connection")}
    headers["authorization"] = f"Bearer {world.keys[key]}"
    return httpx.post(world.url + path, content=orjson.dumps(body), headers=headers, timeout=30)


def frames(response: httpx.Response) -> list[tuple[dict, bytes]]:
    return eventstream.Decoder().feed(response.content)


def events(response: httpx.Response) -> list[dict]:
    out = []
    for headers, payload in frames(response):
        data = eventstream.event_json(headers, payload)
        if data is not None:
            out.append(orjson.loads(data))
    return out


@pytest.mark.parametrize("model, upstream_model", [(BEDROCK_MODEL, "fake-gpt"), ("gw-anthropic", "fake-claude")])
def test_bedrock_invoke(world, model, upstream_model):
    world.fake.state.reset()
    response = replay(world, "bedrock-invoke.json", model, "SAY: hello bedrock")
    assert response.status_code == 200, response.text
    assert [b["text"] for b in response.json()["content"] if b["type"] == "text"] == ["hello bedrock"]
    (upstream,) = world.upstream_requests()
    assert upstream["body"]["model"] == upstream_model
    assert "anthropic_version" not in upstream["body"] and "anthropic_beta" not in upstream["body"]
    if upstream_model == "fake-claude":  # header betas first, then the body's, each once
        assert upstream["headers"]["anthropic-beta"] == BETAS and upstream["body"]["thinking"]["type"] == "enabled"


@pytest.mark.parametrize("model", [BEDROCK_MODEL, "gw-anthropic"])
def test_bedrock_stream_is_event_stream_frames(world, model):
    world.fake.state.reset()
    response = replay(world, "bedrock-invoke-with-response-stream.json", model, "SAY: streamed bedrock")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    received = events(response)
    assert received[0]["type"] == "message_start" and received[-1]["type"] == "message_stop"
    text = "".join(e["delta"].get("text", "") for e in received if e["type"] == "content_block_delta")
    assert text == "streamed bedrock"
    assert all(h[":message-type"] == "event" for h, _ in frames(response))
    assert world.upstream_requests()[-1]["body"]["stream"] is True


@pytest.mark.parametrize("model", [BEDROCK_MODEL, "gw-anthropic"])
def test_bedrock_stream_failure_is_an_exception_frame(world, model):
    response = replay(world, "bedrock-invoke-with-response-stream.json", model, "SAY: cut\nFAIL: midstream")
    assert response.status_code == 200
    last_headers, last_payload = frames(response)[-1]
    assert last_headers[":message-type"] == "exception" and last_headers[":exception-type"].endswith("Exception")
    assert orjson.loads(last_payload)["message"]


def test_bedrock_errors_carry_the_message_where_bedrock_puts_it(world):
    response = replay(world, "bedrock-invoke.json", "us.anthropic.no-such-model-v1:0", "SAY: hi")
    assert response.status_code == 404
    body = response.json()
    assert body["message"] == body["error"]["message"] == "model: no-such-model not found"
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    anonymous = httpx.post(f"{world.url}/bedrock/model/{BEDROCK_MODEL}/invoke", json={"messages": []})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "authentication_error"


def test_bedrock_inference_profiles_list_the_keys_claude_models(world, claude_price):
    """Claude Code's Bedrock mode asks ListInferenceProfiles first: the Claude models a pattern route serves
    (from the price table) come back under Bedrock ids, which map back to the same route."""
    url = f"{world.url}/bedrock/inference-profiles"
    listed = httpx.get(f"{url}?type=SYSTEM_DEFINED", headers={"authorization": f"Bearer {world.keys['alpha']}"})
    (profile,) = [p for p in listed.json()["inferenceProfileSummaries"]
                  if p["inferenceProfileId"] == f"us.anthropic.{claude_price}-v1:0"]  # fmt: skip
    assert profile["inferenceProfileName"] == "Claude Sonnet 4.5" and profile["status"] == "ACTIVE"
    beta = httpx.get(url, headers={"authorization": f"Bearer {world.keys['beta']}"})
    assert beta.json() == {"inferenceProfileSummaries": []}  # beta may use gw-anthropic only
    assert httpx.get(url).json() == {"inferenceProfileSummaries": []}  # no key (CLAUDE_CODE_SKIP_BEDROCK_AUTH)
    assert httpx.get(url, headers={"authorization": "Bearer gh_not-a-key-at-all-000000"}).status_code == 401


@pytest.mark.parametrize("model, upstream_model", [(VERTEX_MODEL, "fake-gpt"), ("gw-anthropic", "fake-claude")])
def test_vertex_raw_predict_and_stream(world, model, upstream_model):
    world.fake.state.reset()
    complete = replay(world, "vertex-rawPredict.json", model, "SAY: hello vertex")
    assert complete.status_code == 200, complete.text
    assert complete.json()["content"][-1]["text"] == "hello vertex"
    streamed = replay(world, "vertex-streamRawPredict.json", model, "SAY: streamed vertex")
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert "event: message_stop" in streamed.text and "streamed vertex" not in world.upstream_requests()[0]["body"]
    first, second = world.upstream_requests()
    assert first["body"]["model"] == second["body"]["model"] == upstream_model
    assert "stream" not in first["body"] or first["body"]["stream"] is False
    assert "anthropic_version" not in second["body"] and second["body"]["stream"] is True


def test_vertex_count_tokens(world):
    world.fake.state.reset()
    response = httpx.post(
        f"{world.url}/vertex/v1/projects/p/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict",
        json={"anthropic_version": "vertex-2023-10-16", "model": "gw-anthropic",
              "messages": [{"role": "user", "content": "count me"}]},
        headers={"x-api-key": world.keys["alpha"]},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["input_tokens"] > 0
    (upstream,) = world.upstream_requests()
    assert upstream["path"] == "/v1/messages/count_tokens" and upstream["body"]["model"] == "fake-claude"
    assert "anthropic_version" not in upstream["body"]


def test_ledger_names_the_ingress(world, ledger):
    response = replay(world, "vertex-rawPredict.json", "gw-anthropic", "SAY: on the books")
    row = ledger(response.headers["request-id"])
    assert row.ingress_api == "vertex" and row.session_id == "34ad9d44-9007-46bf-b9a8-d2df8e527343"


@pytest.mark.parametrize("path, body, status", [
    (f"/bedrock/model/{BEDROCK_MODEL}/invoke", b"{not json", 400),
    (f"/bedrock/model/{BEDROCK_MODEL}/invoke-with-response-stream", b"[]", 400),
    (f"/bedrock/model/{BEDROCK_MODEL}/invoke", b'{"anthropic_beta": "not-a-list", "max_tokens": 5}', 400),
    ("/vertex/v1/projects/p/locations/l/publishers/anthropic/models/claude-x@1:predict", b"{}", 404),
    ("/bedrock/model/x/converse", b"{}", 404),
])  # fmt: skip
def test_malformed_envelopes_are_anthropic_errors(world, path, body, status):
    response = httpx.post(world.url + path, content=body, headers={"x-api-key": world.keys["alpha"]})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] in ("invalid_request_error", "not_found_error") and error["message"]


def test_a_bedrock_stream_is_cached_and_replayed_in_frames(world, committed):
    """The response cache reads a Bedrock caller's stream with the format's own decoder (frames -> events) and
    answers a repeat in frames again."""
    from tests.e2e.optimize_world import key_with, marker, upstream_calls

    secret, mark = key_with(response_cache_ttl=60), marker()
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "temperature": 0,
            "messages": [{"role": "user", "content": f"SAY: framed {mark}"}]}  # fmt: skip
    url = f"{world.url}/bedrock/model/gw-anthropic/invoke-with-response-stream"
    first, second = (httpx.post(url, json=body, headers={"authorization": f"Bearer {secret}"}) for _ in range(2))
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert len(upstream_calls(world.fake, mark)) == 1

    def text(response):
        return "".join(e["delta"].get("text", "") for e in events(response) if e["type"] == "content_block_delta")

    assert text(second) == text(first) == f"framed {mark}"
    assert events(second)[-1]["type"] == "message_stop"
