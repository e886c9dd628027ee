"""Anthropic Messages wire format (docs/translation.md §2, §6.1): request reading, bodies, SSE events, errors."""

from __future__ import annotations

import orjson

from .script import Plan, build_plan, signature, split

REQUEST_ID_HEADER = "request-id"

ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
    503: "api_error", 529: "overloaded_error",
}
ERROR_MESSAGES = {
    401: "invalid x-api-key", 404: "model: not found", 413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of request tokens has exceeded your per-minute rate limit", 500: "Internal server error",
    503: "Service unavailable", 529: "Overloaded",
}


def auth_ok(headers, key: str) -> bool:
    if not key:
        return True
    return headers.get("x-api-key") == key or headers.get("authorization") == "Bearer " + key


def error_body(status: int, message: str | None, rid: str) -> bytes:
    etype = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    msg = message or ERROR_MESSAGES.get(status, "Invalid request")
    return orjson.dumps({"type": "error", "error": {"type": etype, "message": msg}, "request_id": rid})


def stream_error(rid: str) -> bytes:
    return _ev(b"error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                          "request_id": rid})


def validate(body) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    return None


def _block_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def plan(body: dict, raw: bytes, fail_first_seen: set) -> tuple[Plan, int]:
    """-> (plan, number of tool_use blocks already in the history, so new tool ids stay unique)."""
    msgs = body["messages"]
    text, tool_results = "", None
    for m in reversed(msgs):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                text = c
            elif isinstance(c, list):
                texts, results = [], []
                for b in c:
                    if not isinstance(b, dict):
                        continue
                    t = b.get("type")
                    if t == "text":
                        texts.append(b.get("text", ""))
                    elif t == "tool_result":
                        results.append(_block_text(b.get("content")))
                text = "\n".join(texts)
                if results:
                    tool_results = "\n".join(results)
            break
    images = prior_tools = 0
    if b'"image"' in raw or b'"tool_use"' in raw:
        for m in msgs:
            c = m.get("content") if isinstance(m, dict) else None
            if isinstance(c, list):
                for b in c:
                    t = b.get("type") if isinstance(b, dict) else None
                    if t == "image":
                        images += 1
                    elif t == "tool_use":
                        prior_tools += 1
                    elif t == "tool_result" and isinstance(b.get("content"), list):
                        images += sum(1 for x in b["content"] if isinstance(x, dict) and x.get("type") == "image")
    tools = body.get("tools")
    forced = None
    tc = body.get("tool_choice")
    if isinstance(tc, dict):
        if tc.get("type") == "tool":
            forced = tc.get("name")
        elif tc.get("type") == "any" and tools:
            forced = tools[0].get("name")
    p = build_plan(
        text, tool_results=tool_results, images=images, tools=tools, forced_tool=forced,
        stop_seqs=body.get("stop_sequences") or (), max_tokens=body.get("max_tokens"),
        fail_first_seen=fail_first_seen,
    )
    return p, prior_tools


def _usage(u) -> dict:
    inp, out, cread, cwrite = u
    return {"input_tokens": inp, "cache_creation_input_tokens": cwrite, "cache_read_input_tokens": cread,
            "output_tokens": out}


def render(p: Plan, ctx) -> bytes:
    content: list[dict] = []
    if p.thinking is not None:
        content.append({"type": "thinking", "thinking": p.thinking, "signature": signature(p.thinking)})
    if p.text is not None:
        content.append({"type": "text", "text": p.text})
    for i, (name, args) in enumerate(p.tools):
        content.append({"type": "tool_use", "id": f"toolu_fake_{ctx.first_tool_n + i}", "name": name, "input": args})
    return orjson.dumps({
        "id": ctx.msg_id, "type": "message", "role": "assistant", "model": ctx.model, "content": content,
        "stop_reason": p.stop_reason, "stop_sequence": p.stop_sequence, "usage": _usage(ctx.usage),
    })


def _ev(name: bytes, obj) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


PING = _ev(b"ping", {"type": "ping"})
MESSAGE_STOP = _ev(b"message_stop", {"type": "message_stop"})


def _delta(i: int, delta: dict) -> bytes:
    return _ev(b"content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta})


def render_stream(p: Plan, ctx) -> tuple[list[bytes], int]:
    """-> (SSE events, cut): `cut` is where FAIL: midstream/truncate/hang_midstream break in (after the
    first 3 content deltas)."""
    inp, out, cread, cwrite = ctx.usage
    start_usage = {"input_tokens": inp, "cache_creation_input_tokens": cwrite, "cache_read_input_tokens": cread,
                   "output_tokens": 1}
    ev = [
        _ev(b"message_start", {"type": "message_start", "message": {
            "id": ctx.msg_id, "type": "message", "role": "assistant", "model": ctx.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
        PING,
    ]
    deltas, cut, i = 0, 0, 0

    def mark():
        nonlocal deltas, cut
        deltas += 1
        if deltas == 3:
            cut = len(ev)

    if p.thinking is not None:
        ev.append(_ev(b"content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
        for piece in split(p.thinking, ctx.chunks):
            ev.append(_delta(i, {"type": "thinking_delta", "thinking": piece}))
            mark()
        ev.append(_delta(i, {"type": "signature_delta", "signature": signature(p.thinking)}))
        ev.append(_ev(b"content_block_stop", {"type": "content_block_stop", "index": i}))
        i += 1
    if p.text is not None:
        ev.append(_ev(b"content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "text", "text": ""}}))
        for piece in split(p.text, ctx.chunks):
            ev.append(_delta(i, {"type": "text_delta", "text": piece}))
            mark()
        ev.append(_ev(b"content_block_stop", {"type": "content_block_stop", "index": i}))
        i += 1
    for k, (name, args) in enumerate(p.tools):
        ev.append(_ev(b"content_block_start", {"type": "content_block_start", "index": i, "content_block": {
            "type": "tool_use", "id": f"toolu_fake_{ctx.first_tool_n + k}", "name": name, "input": {}}}))
        js = orjson.dumps(args).decode()
        half = len(js) // 2
        for piece in ("", js[:half], js[half:]):
            ev.append(_delta(i, {"type": "input_json_delta", "partial_json": piece}))
            mark()
        ev.append(_ev(b"content_block_stop", {"type": "content_block_stop", "index": i}))
        i += 1
    if not cut:
        cut = len(ev)
    ev.append(_ev(b"message_delta", {
        "type": "message_delta", "delta": {"stop_reason": p.stop_reason, "stop_sequence": p.stop_sequence},
        "usage": _usage(ctx.usage)}))
    ev.append(MESSAGE_STOP)
    return ev, cut


def count_tokens(body) -> int:
    """count_tokens formula: UTF-8 bytes of every string value (keys excluded) under system, messages and
    tools, integer-divided by 4, at least 1."""
    total = 0
    stack = [body.get(k) for k in ("system", "messages", "tools") if isinstance(body, dict)]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v.encode())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return max(1, total // 4)
