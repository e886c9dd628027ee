"""Non-streaming Messages responses, both directions: ChatResponse -> Message JSON for Anthropic callers, and an
Anthropic upstream's Message JSON -> ChatResponse.

The json_response trick: an OpenAI caller's `response_format: json_schema` reaches Anthropic as a forced tool
named `json_response` (upstream_request.py). Its tool_use is turned back here into a Text block holding the JSON
(`json.dumps(input)`) with stop_reason `end_turn`, which the OpenAI renderer shows as `message.content` and
`finish_reason: "stop"`. stream.py does the same to streams.
"""

import json

from ...canonical import ChatRequest, ChatResponse, RedactedThinking, Text, Thinking, ToolUse, Usage
from ...ids import message_id
from .upstream_request import JSON_TOOL_NAME
from .wire import block_to_wire, stop_reason_from_wire, usage_from_wire, usage_to_wire


def render_response(resp: ChatResponse, req: ChatRequest) -> dict:
    content = [block_to_wire(b) for b in resp.content]
    has_tool_use = any(b["type"] == "tool_use" for b in content)
    return {
        "id": anthropic_message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": "tool_use" if has_tool_use else resp.stop_reason,  # P-1
        "stop_sequence": resp.stop_sequence,
        "usage": usage_to_wire(resp.usage),
    }


def anthropic_message_id(upstream_id: str) -> str:
    """§5.5: keep an Anthropic id, never show another provider's (chatcmpl-...) to an Anthropic client."""
    return upstream_id if upstream_id.startswith("msg_") else message_id()


def parse_response(body: dict, req: ChatRequest) -> ChatResponse:
    content = [b for b in map(_block, body.get("content") or ()) if b is not None]
    stop_reason = stop_reason_from_wire(body.get("stop_reason"))
    if is_json_schema(req) and any(_is_json_tool(b) for b in content):
        content = [Text(json.dumps(b.input, ensure_ascii=False)) if _is_json_tool(b) else b for b in content]
        if stop_reason == "tool_use" and not any(isinstance(b, ToolUse) for b in content):
            stop_reason = "end_turn"
    return ChatResponse(
        id=body.get("id") or message_id(),
        model=body.get("model") or "",
        content=content,
        stop_reason=stop_reason,
        stop_sequence=body.get("stop_sequence"),
        usage=usage_from_response(body),
    )


def usage_from_response(body: dict) -> Usage:
    return usage_from_wire(body.get("usage"))


def is_json_schema(req: ChatRequest) -> bool:
    return req.response_format is not None and req.response_format.type == "json_schema"


def _is_json_tool(block) -> bool:
    return isinstance(block, ToolUse) and block.name == JSON_TOOL_NAME


def _block(raw: dict):
    """Response blocks another format can carry; server-tool blocks (server_tool_use, *_tool_result) and unknown
    types are dropped, citations too."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return Text(raw.get("text") or "")
    if kind == "tool_use":
        return ToolUse(id=raw.get("id") or "", name=raw.get("name") or "", input=raw.get("input") or {})
    if kind == "thinking":
        return Thinking(raw.get("thinking") or "", signature=raw.get("signature") or "")
    if kind == "redacted_thinking":
        return RedactedThinking(raw.get("data") or "")
    return None
