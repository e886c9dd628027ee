"""Real captured client requests (tests/fixtures, from Claude Code, aider and llm) replayed through the gateway.

Claude Code's model names match the `claude-*` / `gw-*` routes (translated to the OpenAI-compatible fake); the
OpenAI clients' `gpt-*` names route to the Anthropic fake. Responses are parsed by the official SDKs' own
stream accumulators, as the clients would parse them.
"""

import json
from pathlib import Path

import httpx
import openai
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from proxy.formats.sse import SSEParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SKIP_HEADERS = {"content-length", "host", "x-api-key", "authorization", "accept-encoding"}


def load(kind: str, pattern: str) -> list[Path]:
    return sorted((FIXTURES / kind).glob(pattern))


def replay(world, capture: dict, body: dict | None = None, key: str = "alpha") -> httpx.Response:
    headers = {k: v for k, v in capture["headers"].items() if k.lower() not in SKIP_HEADERS}
    headers["authorization" if "authorization" in {h.lower() for h in capture["headers"]} else "x-api-key"] = (
        f"Bearer {world.keys[key]}" if "authorization" in {h.lower() for h in capture["headers"]} else world.keys[key]
    )
    url = world.url + capture["path"] + (f"?{capture['query']}" if capture.get("query") else "")
    content = json.dumps(body or capture["body"], separators=(",", ":"), ensure_ascii=False).encode()
    return httpx.request(capture["method"], url, headers=headers, content=content, timeout=30)


def wire_keys(body: dict) -> set[str]:
    """Keys of the request, its messages and their content parts (not of tool schemas, which may use any name)."""
    keys = set(body)
    for message in body.get("messages", []):
        keys |= set(message)
        if isinstance(message.get("content"), list):
            keys |= set().union(*(set(part) for part in message["content"]))
    return keys


def anthropic_stream_message(raw: bytes) -> Message:
    parser, snapshot, json_bufs = SSEParser(), None, {}
    events = parser.feed(raw) + parser.finish()
    names = [e.event for e in events]
    assert names[0] == "message_start" and names[-1] == "message_stop", names
    for event in events:
        data = json.loads(event.data)
        assert data["type"] == event.event  # P-22: event line and JSON type agree
        if event.event != "ping":
            snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot


@pytest.mark.parametrize("path", load("claude-code", "messages-*.json"), ids=lambda p: p.stem)
def test_claude_code_request_translates_to_an_openai_upstream(world, path):
    capture = json.loads(path.read_text())
    world.fake.state.requests.clear()
    response = replay(world, capture)
    assert response.status_code == 200, response.text
    if capture["body"].get("stream"):
        assert response.headers["content-type"].startswith("text/event-stream")
        message = anthropic_stream_message(response.content)
    else:
        message = Message.model_validate(response.json())
    assert message.content and message.stop_reason in ("end_turn", "tool_use")
    sent = world.upstream_requests()[-1]
    assert sent["path"] == "/v1/chat/completions"
    # §5.1: Anthropic-only fields never reach an OpenAI upstream; P-24: nor does the per-request billing line
    assert not wire_keys(sent["body"]) & {"context_management", "output_config", "cache_control", "metadata", "thinking"}
    assert "x-anthropic-billing-header" not in json.dumps(sent["body"])
    assert sent["headers"].get("authorization") == "Bearer sk-fake-upstream-credential"


@pytest.mark.parametrize(
    "name", ["messages-tool-result-turn.json", "messages-first-turn.json", "headers-auth-token.json"]
)
def test_claude_code_request_passes_through_to_anthropic_unchanged(world, name):
    capture = json.loads((FIXTURES / "claude-code" / name).read_text())
    body = {**capture["body"], "model": "native-claude-opus"}
    world.fake.state.requests.clear()
    response = replay(world, capture, body)
    assert response.status_code == 200, response.text
    anthropic_stream_message(response.content)
    sent = world.upstream_requests()[-1]
    assert sent["body"] == body  # signatures, billing block, betas fields: all as the client sent them
    assert sent["headers"]["anthropic-beta"] == capture["headers"]["anthropic-beta"]
    assert sent["headers"]["anthropic-version"] == capture["headers"]["anthropic-version"]
    assert sent["headers"]["x-api-key"] == "sk-fake-upstream-credential"  # never the client's gateway key
    assert world.keys["alpha"] not in json.dumps(sent["headers"])


@pytest.mark.parametrize("path", load("claude-code", "count-tokens*.json"), ids=lambda p: p.stem)
def test_claude_code_count_tokens(world, path):
    response = replay(world, json.loads(path.read_text()))
    assert response.status_code == 200
    assert response.json()["input_tokens"] > 0


def test_claude_code_head_probe_answers_without_auth(world):
    capture = json.loads((FIXTURES / "claude-code" / "head-probe.json").read_text())
    response = httpx.head(world.url + "/", headers={"user-agent": capture["headers"].get("user-agent", "Bun")})
    assert response.status_code == 200


@pytest.mark.parametrize("path", load("openai-clients", "*.json"), ids=lambda p: p.stem)
def test_openai_client_request_translates_to_an_anthropic_upstream(world, path):
    capture = json.loads(path.read_text())
    world.fake.state.requests.clear()
    response = replay(world, capture)
    assert response.status_code == 200, response.text
    body = capture["body"]
    if body.get("stream"):
        state = ChatCompletionStreamState()
        parser = SSEParser()
        events = parser.feed(response.content) + parser.finish()
        assert events[-1].data == b"[DONE]"
        for event in events[:-1]:
            chunk = json.loads(event.data)
            if chunk.get("choices"):
                state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
            else:
                assert body.get("stream_options", {}).get("include_usage")
        completion = state.get_final_completion()
    else:
        completion = ChatCompletion.model_validate(response.json())
    assert completion.choices[0].message.content or completion.choices[0].message.tool_calls
    sent = world.upstream_requests()[-1]
    assert sent["path"].startswith("/v1/messages")
    assert all(m["role"] in ("user", "assistant") for m in sent["body"]["messages"])  # system hoisted (P-2)
    assert sent["body"]["max_tokens"] > 0  # P-9


def test_sdk_sees_no_difference_on_a_fixture_stream(world):
    """The aider capture, replayed through the SDK itself rather than raw HTTP."""
    body = json.loads((FIXTURES / "openai-clients" / "aider-chat.json").read_text())["body"]
    client = openai.OpenAI(base_url=world.url + "/v1", api_key=world.keys["alpha"], max_retries=0)
    stream = client.chat.completions.create(**body)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
