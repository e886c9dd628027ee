"""OpenAI Chat Completions wire format (docs/translation.md §4): request reading, bodies, chunks, errors."""

from __future__ import annotations

import orjson

from .script import Plan, build_plan, json_thirds, split

REQUEST_ID_HEADER = "x-request-id"
CREATED = 1767225600  # fixed (2026-01-01T00:00:00Z) so responses are reproducible
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}

ERRORS = {  # status -> (type, code, message)
    400: ("invalid_request_error", "invalid_value", "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    413: ("invalid_request_error", "request_too_large", "Request too large."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", "service_unavailable", "The server is overloaded or not ready yet."),
    529: ("server_error", "overloaded", "The server is overloaded."),
}


def auth_ok(headers, key: str) -> bool:
    return not key or headers.get("authorization") == "Bearer " + key


def error_body(status: int, message: str | None, rid: str) -> bytes:
    etype, code, default = ERRORS.get(status, ("invalid_request_error" if status < 500 else "server_error",
                                               None, "Error."))
    return orjson.dumps({"error": {"message": message or default, "type": etype, "param": None, "code": code}})


def stream_error(rid: str) -> bytes:
    return b"data: " + orjson.dumps({"error": {"message": "The server is overloaded.", "type": "server_error",
                                               "param": None, "code": "overloaded"}}) + b"\n\n"


def validate(body) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "you must provide a model parameter"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages: expected a non-empty array"
    return None


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def plan(body: dict, raw: bytes, fail_first_seen: set) -> tuple[Plan, int]:
    """-> (plan, number of tool calls already in the history, so new call ids stay unique).
    The script comes from the last user message; trailing role:"tool" messages (after skipping trailing
    system/developer messages) mean a tool round trip ends: answer "Done: ..." from their text."""
    msgs = body["messages"]
    text, tool_results = "", None
    results: list[str] = []
    for m in reversed(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("system", "developer"):
            continue
        if role == "tool":
            results.append(_text(m.get("content")))
            continue
        if role == "user" and not results:
            text = _text(m.get("content"))
        break
    if results:
        tool_results = "\n".join(reversed(results))
    images = prior_tools = 0
    if b'"image_url"' in raw or b'"tool_calls"' in raw:
        for m in msgs:
            if not isinstance(m, dict):
                continue
            c = m.get("content")
            if isinstance(c, list):
                images += sum(1 for x in c if isinstance(x, dict) and x.get("type") == "image_url")
            tc = m.get("tool_calls")
            if isinstance(tc, list):
                prior_tools += len(tc)
    tools = body.get("tools")
    forced = None
    tc = body.get("tool_choice")
    if isinstance(tc, dict):
        forced = (tc.get("function") or {}).get("name")
    elif tc == "required" and tools:
        forced = (tools[0].get("function") or {}).get("name")
    stop = body.get("stop")
    stop_seqs = (stop,) if isinstance(stop, str) else (stop or ())
    p = build_plan(
        text, tool_results=tool_results, images=images, tools=tools, forced_tool=forced, stop_seqs=stop_seqs,
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"), fail_first_seen=fail_first_seen,
    )
    return p, prior_tools


def _usage(u, reasoning: int) -> dict:
    inp, out, cread, cwrite = u
    details = {"cached_tokens": cread}
    if cwrite > 0:
        details["cache_write_tokens"] = cwrite
    return {"prompt_tokens": inp + cread + cwrite, "completion_tokens": out,
            "total_tokens": inp + cread + cwrite + out, "prompt_tokens_details": details,
            "completion_tokens_details": {"reasoning_tokens": min(reasoning, out)}}


def _reasoning_tokens(p: Plan, chunks: int) -> int:
    return len(split(p.thinking, chunks)) if p.thinking else 0


def render(p: Plan, ctx) -> bytes:
    msg: dict = {"role": "assistant", "content": p.text, "refusal": None}
    if p.thinking is not None:
        msg["reasoning_content"] = p.thinking
    if p.tools:
        msg["tool_calls"] = [
            {"id": f"call_fake_{ctx.first_tool_n + i}", "type": "function",
             "function": {"name": name, "arguments": orjson.dumps(args).decode()}}
            for i, (name, args) in enumerate(p.tools)
        ]
    return orjson.dumps({
        "id": ctx.msg_id, "object": "chat.completion", "created": CREATED, "model": ctx.model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": FINISH[p.stop_reason]}],
        "usage": _usage(ctx.usage, _reasoning_tokens(p, ctx.chunks)),
    })


def render_stream(p: Plan, ctx) -> tuple[list[bytes], int]:
    """-> (SSE lines, cut): `cut` is where FAIL: midstream/truncate/hang_midstream break in (after the first
    3 content deltas). Tool-call fragments of parallel calls are interleaved unless ctx.interleave is off."""
    # Every chunk shares this prefix; only the choices (and usage) differ.
    head = orjson.dumps({"id": ctx.msg_id, "object": "chat.completion.chunk", "created": CREATED,
                         "model": ctx.model, "system_fingerprint": "fp_fake"})[:-1]
    tail = b',"usage":null}\n\n' if ctx.include_usage else b"}\n\n"

    def chunk(delta: dict, finish=None) -> bytes:
        return (b"data: " + head + b',"choices":[' + orjson.dumps(
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}) + b"]" + tail)

    ev = [chunk({"role": "assistant", "content": "" if p.text is not None else None})]
    deltas, cut = 0, 0

    def add(delta: dict) -> None:
        nonlocal deltas, cut
        ev.append(chunk(delta))
        deltas += 1
        if deltas == 3:
            cut = len(ev)

    if p.thinking is not None:
        for piece in split(p.thinking, ctx.chunks):
            add({"reasoning_content": piece})
    if p.text:
        for piece in split(p.text, ctx.chunks):
            add({"content": piece})
    if p.tools:
        per_call = []
        for i, (name, args) in enumerate(p.tools):
            first = {"index": i, "id": f"call_fake_{ctx.first_tool_n + i}", "type": "function",
                     "function": {"name": name, "arguments": ""}}
            pieces = json_thirds(orjson.dumps(args).decode())
            per_call.append([first] + [{"index": i, "function": {"arguments": s}} for s in pieces])
        if ctx.interleave and len(per_call) > 1:
            order = [frags[k] for k in range(4) for frags in per_call]
        else:
            order = [f for frags in per_call for f in frags]
        for frag in order:
            add({"tool_calls": [frag]})
    if not cut:
        cut = len(ev)
    ev.append(chunk({}, FINISH[p.stop_reason]))
    if ctx.include_usage:
        ev.append(b"data: " + head + b',"choices":[],"usage":' + orjson.dumps(
            _usage(ctx.usage, _reasoning_tokens(p, ctx.chunks))) + b"}\n\n")
    ev.append(b"data: [DONE]\n\n")
    return ev, cut
