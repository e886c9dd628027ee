"""OpenAI Responses wire format (POST /v1/responses): request reading, the Response object, its SSE events,
errors. The script is read like the Chat Completions one: from the last user message of `input` (a string
input is that message), unless `input` ends in function_call_output / custom_tool_call_output items, which
end a tool round trip ("Done: ..."). Every event has an `event:` line and a `sequence_number` (R-1).
Tools are read from `tools` and from `additional_tools` input items, a namespace's in its place; a USE_TOOL of a
`custom` (freeform) tool gives a custom_tool_call whose input is the rest of the line, named and namespaced as
the request defined it. `THEN:` lines in the last user message script the next steps of a multi-step turn
(steps.py)."""

from __future__ import annotations

import orjson

from . import steps, wire_openai
from .script import Plan, build_plan, json_thirds, split

REQUEST_ID_HEADER = "x-request-id"
CREATED = wire_openai.CREATED
INCOMPLETE = {"max_tokens": "max_output_tokens"}
auth_ok = wire_openai.auth_ok
error_body = wire_openai.error_body  # the Responses API's HTTP errors are Chat Completions' body
OUTPUTS = ("function_call_output", "custom_tool_call_output")


def stream_error(rid: str) -> bytes:
    """A failure after the stream started: an `error` event (its sequence number is not tracked: 9999)."""
    error = {"type": "server_error", "code": "server_error", "message": "The server is overloaded.", "param": None}
    return _ev("error", {"type": "error", **error, "error": error, "sequence_number": 9999})


def validate(body) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "Missing required parameter: 'model'."
    value = body.get("input")
    if not (isinstance(value, str) and value) and not (isinstance(value, list) and value):
        return "Missing required parameter: 'input'."
    return None


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict)
                         and p.get("type") in ("input_text", "output_text"))
    return ""


def _output_text(output) -> str:
    return output if isinstance(output, str) else _text(output)


def plan(body: dict, raw: bytes, fail_first_seen: set) -> tuple[Plan, int]:
    """-> (plan, number of tool calls already in the history, so new call ids stay unique)."""
    items = body["input"]
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    text, results = "", []
    for item in reversed(items):
        if not isinstance(item, dict):
            continue
        kind, role = item.get("type", "message"), item.get("role")
        if kind == "message" and role in ("system", "developer"):
            continue
        if kind in OUTPUTS:
            results.append(_output_text(item.get("output")))
            continue
        if kind == "message" and role == "user" and not results:
            text = _text(item.get("content"))
        break
    text = steps.script_text(items, text)  # THEN: lines chain tool calls within one turn (steps.py)
    images = prior_tools = 0
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type") in ("function_call", "custom_tool_call"):
            prior_tools += 1
        content = item.get("content")
        if isinstance(content, list):
            images += sum(1 for p in content if isinstance(p, dict) and p.get("type") == "input_image")
    tools = [{"name": t.get("name"), "input_schema": t.get("parameters") or {}} if t.get("type") == "function"
             else {"name": t.get("name"), "input_schema": CUSTOM_SCHEMA} for t, _ in offered_tools(body)]
    forced = None
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        forced = choice.get("name")
    elif choice == "required" and tools:
        forced = tools[0]["name"]
    p = build_plan(
        text, tool_results="\n".join(reversed(results)) if results else None, images=images, tools=tools,
        forced_tool=forced, max_tokens=body.get("max_output_tokens"), fail_first_seen=fail_first_seen,
    )
    return p, prior_tools


CUSTOM_SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


def offered_tools(body: dict) -> list[tuple[dict, str | None]]:
    """(function or custom tool, its namespace) from `tools` and `additional_tools` items."""
    listed = list(body.get("tools") or [])
    for item in body.get("input") if isinstance(body.get("input"), list) else ():
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            listed += item.get("tools") or []
    out = []
    for tool in listed:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace":
            out += [(t, tool.get("name")) for t in tool.get("tools") or () if t.get("type") in ("function", "custom")]
        elif tool.get("type") in ("function", "custom"):
            out.append((tool, None))
    return out


def _ids(ctx) -> tuple[str, str, str]:
    n = ctx.msg_id.removeprefix("chatcmpl-fake")
    return f"resp_fake_{n}", f"msg_fake_{n}", f"rs_fake_{n}"


def _usage(u, reasoning: int) -> dict:
    inp, out, cread, cwrite = u
    return {"input_tokens": inp + cread + cwrite, "input_tokens_details": {"cached_tokens": cread},
            "output_tokens": out, "output_tokens_details": {"reasoning_tokens": min(reasoning, out)},
            "total_tokens": inp + cread + cwrite + out}


def _response(p: Plan, ctx, status: str, output: list, usage) -> dict:
    resp_id = _ids(ctx)[0]
    details = {"reason": INCOMPLETE[p.stop_reason]} if status == "incomplete" else None
    return {"id": resp_id, "object": "response", "created_at": CREATED, "status": status, "error": None,
            "incomplete_details": details, "model": ctx.model, "output": output, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "usage": usage, "metadata": {}}


def _items(p: Plan, ctx) -> list[dict]:
    """The finished output items: reasoning, message, function and custom tool calls."""
    _, msg_id, rs_id = _ids(ctx)
    defined = {tool.get("name"): (tool, namespace) for tool, namespace in offered_tools(ctx.body)}
    items = []
    if p.thinking is not None:
        items.append({"id": rs_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": p.thinking}]})
    if p.text:
        items.append({"id": msg_id, "type": "message", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": p.text, "annotations": [], "logprobs": []}]})
    for i, (name, args) in enumerate(p.tools):
        n = ctx.first_tool_n + i
        tool, namespace = defined.get(name, ({}, None))
        if tool.get("type") == "custom":
            item = {"id": f"ctc_fake_{n}", "type": "custom_tool_call", "status": "completed",
                    "call_id": f"call_fake_{n}", "name": name, "input": str(args.get("input", ""))}
        else:
            item = {"id": f"fc_fake_{n}", "type": "function_call", "status": "completed",
                    "arguments": orjson.dumps(args).decode(), "call_id": f"call_fake_{n}", "name": name}
        if namespace:
            item["namespace"] = namespace
        items.append(item)
    return items


def _status(p: Plan) -> str:
    return "incomplete" if p.stop_reason in INCOMPLETE else "completed"


def _reasoning_tokens(p: Plan, chunks: int) -> int:
    return len(split(p.thinking, chunks)) if p.thinking else 0


def render(p: Plan, ctx) -> bytes:
    usage = _usage(ctx.usage, _reasoning_tokens(p, ctx.chunks))
    return orjson.dumps(_response(p, ctx, _status(p), _items(p, ctx), usage))


def _ev(kind: str, payload: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def render_stream(p: Plan, ctx) -> tuple[list[bytes], int]:
    """-> (SSE events, cut): `cut` is where FAIL: midstream/truncate/hang_midstream break in (after the first
    3 deltas)."""
    ev: list[bytes] = []
    deltas, cut = 0, 0

    def add(kind: str, fields: dict, delta: bool = False) -> None:
        nonlocal deltas, cut
        ev.append(_ev(kind, {"type": kind, **fields, "sequence_number": len(ev)}))
        if delta:
            deltas += 1
            if deltas == 3:
                cut = len(ev)

    final = _items(p, ctx)
    add("response.created", {"response": _response(p, ctx, "in_progress", [], None)})
    add("response.in_progress", {"response": _response(p, ctx, "in_progress", [], None)})
    for index, item in enumerate(final):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            add("response.output_item.added", {"output_index": index, "item": {**item, "summary": []}})
            part = {"type": "summary_text", "text": ""}
            add("response.reasoning_summary_part.added", {**at, "summary_index": 0, "part": part})
            for piece in split(p.thinking, ctx.chunks):
                add("response.reasoning_summary_text.delta", {**at, "summary_index": 0, "delta": piece}, True)
            add("response.reasoning_summary_text.done", {**at, "summary_index": 0, "text": p.thinking})
            part = {"type": "summary_text", "text": p.thinking}
            add("response.reasoning_summary_part.done", {**at, "summary_index": 0, "part": part})
        elif item["type"] == "message":
            add("response.output_item.added",
                {"output_index": index, "item": {**item, "status": "in_progress", "content": []}})
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            add("response.content_part.added", {**at, "content_index": 0, "part": empty})
            for piece in split(p.text, ctx.chunks):
                add("response.output_text.delta", {**at, "content_index": 0, "delta": piece, "logprobs": []}, True)
            add("response.output_text.done", {**at, "content_index": 0, "text": p.text, "logprobs": []})
            add("response.content_part.done", {**at, "content_index": 0, "part": item["content"][0]})
        elif item["type"] == "custom_tool_call":
            add("response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress",
                                                                               "input": ""}})
            for piece in json_thirds(item["input"]):
                add("response.custom_tool_call_input.delta", {**at, "delta": piece}, True)
            add("response.custom_tool_call_input.done", {**at, "input": item["input"]})
        else:
            add("response.output_item.added",
                {"output_index": index, "item": {**item, "status": "in_progress", "arguments": ""}})
            for piece in json_thirds(item["arguments"]):
                add("response.function_call_arguments.delta", {**at, "delta": piece}, True)
            add("response.function_call_arguments.done", {**at, "arguments": item["arguments"]})
        add("response.output_item.done", {"output_index": index, "item": item})
    if not cut:
        cut = len(ev)
    status = _status(p)
    usage = _usage(ctx.usage, _reasoning_tokens(p, ctx.chunks))
    add(f"response.{status}", {"response": _response(p, ctx, status, final, usage)})
    return ev, cut
