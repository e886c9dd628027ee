"""Dialect differences seen in the wild that the OpenAI decoders absorb, presets or not: tool calls all at
`index: 0` told apart by `id`, routers' `cache_creation_tokens`, and thinking that must vanish for upstreams
that take no reasoning back. End to end: tests/e2e/test_providers_dialects.py."""

import json

from proxy.canonical import (
    BlockDelta,
    BlockStart,
    ChatRequest,
    Message,
    MessageDelta,
    RedactedThinking,
    TargetOptions,
    Text,
    Thinking,
    Tool,
    ToolUse,
)
from proxy.formats.openai import StreamDecoder, render_request
from proxy.formats.openai.mappings import usage_from_openai

REQ = ChatRequest(model="m", messages=[Message("user", [Text("go")])],
                  tools=[Tool("Read", {"type": "object"}), Tool("Bash", {"type": "object"})])  # fmt: skip


def sse(*deltas, usage=None) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    if usage:
        chunks.append({"choices": [], "usage": usage})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def fragment(call_id=None, name=None, arguments="") -> dict:
    call = {"index": 0, "function": {"arguments": arguments}}
    if call_id:
        call.update(id=call_id, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


def decode(raw: bytes) -> list:
    decoder = StreamDecoder(REQ)
    return decoder.feed(raw) + decoder.finish()


def test_tool_calls_all_at_index_0_become_one_block_each_told_apart_by_id():
    events = decode(sse(
        fragment("call_a", "Read"), fragment(arguments='{"path": '), fragment(arguments='"a.txt"}'),
        {"content": " and then "},
        fragment("call_b", "Bash"), fragment(arguments='{"cmd": "ls"}'),
    ))  # fmt: skip
    starts = [e.block for e in events if isinstance(e, BlockStart)]
    assert [type(b).__name__ for b in starts] == ["ToolUse", "Text", "ToolUse"]
    assert [(b.id, b.name) for b in starts if isinstance(b, ToolUse)] == [("call_a", "Read"), ("call_b", "Bash")]
    args = {}
    for e in events:
        if isinstance(e, BlockDelta) and e.kind == "input_json":
            args[e.index] = args.get(e.index, "") + e.value
    assert [json.loads(v) for v in args.values()] == [{"path": "a.txt"}, {"cmd": "ls"}]
    assert next(e for e in events if isinstance(e, MessageDelta)).stop_reason == "tool_use"


def test_a_repeated_id_at_the_same_index_is_the_same_call():
    events = decode(sse(fragment("call_a", "Read"), {"tool_calls": [{"index": 0, "id": "call_a",
                                                                     "function": {"arguments": "{}"}}]}))
    assert sum(isinstance(e, BlockStart) for e in events) == 1


def test_router_cache_creation_tokens_map_to_cache_writes_and_input_is_the_uncached_rest():
    usage = usage_from_openai({
        "prompt_tokens": 1000, "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 600, "cache_creation_tokens": 300},
    })  # fmt: skip
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (100, 600, 300)
    events = decode(sse(fragment("call_a", "Read", "{}"), usage={
        "prompt_tokens": 50, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 0,
                                                                              "cache_creation_tokens": 40}}))
    final = next(e for e in events if isinstance(e, MessageDelta)).usage
    assert (final.input_tokens, final.cache_write_tokens) == (10, 40)


def test_thinking_and_redacted_thinking_vanish_for_an_upstream_that_takes_no_reasoning_back():
    req = ChatRequest(model="m", messages=[
        Message("user", [Text("one")]),
        Message("assistant", [Thinking("private chain of thought", "sig"), RedactedThinking("opaque-bytes"),
                              Text("answer one")]),
        Message("user", [Text("two")]),
    ])  # fmt: skip
    sent = render_request(req, TargetOptions(remote_model="m"))
    assert sent["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "answer one"},
        {"role": "user", "content": "two"},
    ]
    assert "private chain" not in json.dumps(sent) and "opaque" not in json.dumps(sent)


def test_minted_signatures_verify_only_over_their_own_text_and_never_reach_anthropic():
    from proxy.formats import anthropic, thinking_seal

    signature = thinking_seal.mint("a thought")
    assert signature.startswith(thinking_seal.PREFIX)
    assert thinking_seal.verifies("a thought", signature)
    assert not thinking_seal.verifies("another thought", signature)
    assert not thinking_seal.verifies("a thought", "EqQBCkYIBRgCIkB-anthropic-signature")
    req = ChatRequest(model="m", thinking=None, messages=[
        Message("user", [Text("q")]),
        Message("assistant", [Thinking("a thought", signature), Thinking("theirs", "EqQB-real"), Text("a")]),
        Message("user", [Text("q2")]),
    ])  # fmt: skip
    from proxy.canonical import ThinkingConfig

    req.thinking = ThinkingConfig(type="enabled", budget_tokens=2048)
    sent = anthropic.render_request(req, TargetOptions(remote_model="claude", max_output_tokens=8192))
    assert sent["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "theirs", "signature": "EqQB-real"}, {"type": "text", "text": "a"}
    ]
    body = {"model": "x", "messages": [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "a thought", "signature": signature},
        {"type": "thinking", "thinking": "theirs", "signature": "EqQB-real"}]}]}  # fmt: skip
    forwarded = anthropic.passthrough_request(body, TargetOptions(remote_model="claude"))
    assert forwarded["messages"][0]["content"] == [body["messages"][0]["content"][1]]
    assert forwarded["messages"][0]["content"][0] is body["messages"][0]["content"][1]  # untouched, same object
