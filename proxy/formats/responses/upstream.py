"""ChatRequest -> body for a Responses upstream, and its Response object -> ChatResponse: a caller of another
format (Claude Code, a Chat Completions client) reaching a model served only through /v1/responses.

The request follows §5.1 with the Responses spellings: the system prompt becomes `instructions`, system
messages stay in place, tool results become `function_call_output` items, names are shortened like Chat's
(P-15, reversed when the answer comes back). Function tools get an explicit `strict`, because the Responses
API defaults it to true and then rejects most schemas. Nothing is stored upstream (`store: false`). Stop
sequences and top_k have no Responses field and are dropped.

Reasoning comes back as thinking text (its summary) without a signature: OpenAI's encrypted reasoning cannot
be carried back to this upstream through another format, and must never reach Anthropic (P-20).
"""

import orjson

from proxy.canonical import (
    ChatRequest,
    ChatResponse,
    Document,
    Image,
    Message,
    TargetOptions,
    Text,
    Thinking,
    ToolResult,
    ToolUse,
)
from proxy.ids import message_id, sanitize_tool_id

from ..openai.mappings import parse_arguments
from ..openai.tool_names import shorten, tool_name_map
from ..openai.upstream_request import drops_sampling, reasoning_effort
from .response import usage_from_wire

STOP_REASONS = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}  # incomplete_details.reason ->


def render_request(req: ChatRequest, target: TargetOptions) -> dict:
    body: dict = {"model": target.remote_model}
    if instructions := "\n\n".join(text.text for text in req.system if text.text):
        body["instructions"] = instructions
    body["input"] = [item for message in req.messages for item in _items(message)]
    if req.max_tokens is not None:
        cap = target.max_output_tokens
        body["max_output_tokens"] = min(req.max_tokens, cap) if cap else req.max_tokens  # P-10
    if not drops_sampling(target):  # OpenAI's reasoning models reject sampling parameters (preset capability)
        body.update({k: v for k, v in (("temperature", req.temperature), ("top_p", req.top_p)) if v is not None})
    if req.tools:
        body["tools"] = [_tool(tool) for tool in req.tools]
        _tool_choice(body, req)
    if effort := reasoning_effort(req, target):  # §5.9 thresholds; none for non-reasoners (R-6)
        body["reasoning"] = {"effort": effort, "summary": "auto"}
    if req.response_format:
        body["text"] = {"format": _text_format(req.response_format)}
    if req.user:
        body["user"] = req.user
    body["store"] = False
    if req.stream:
        body["stream"] = True
    return body


def _items(message: Message) -> list[dict]:
    if message.role == "system":
        text = "\n\n".join(b.text for b in message.content if isinstance(b, Text) and b.text)
        return [{"role": "system", "content": text}] if text else []
    if message.role == "assistant":
        return _assistant_items(message.content)
    results = [_tool_output(b) for b in message.content if isinstance(b, ToolResult)]  # P-3: results first
    parts = [part for b in message.content if not isinstance(b, ToolResult) and (part := _part(b))]
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _assistant_items(blocks: list) -> list[dict]:
    """Text runs -> assistant messages with string content (the SDK's input types allow output_text parts
    only on stored output messages, which need ids), tool uses -> function_call items; thinking has no way
    back (see top)."""
    items: list[dict] = []
    for block in blocks:
        if isinstance(block, Text) and block.text:
            if items and items[-1].get("role") == "assistant":
                items[-1]["content"] += block.text
            else:
                items.append({"role": "assistant", "content": block.text})
        elif isinstance(block, ToolUse):
            arguments = orjson.dumps(block.input).decode()
            items.append({"type": "function_call", "call_id": block.id, "name": shorten(block.name),
                          "arguments": arguments})  # fmt: skip
    return items


def _part(block) -> dict | None:
    if isinstance(block, Text):
        return {"type": "input_text", "text": block.text} if block.text else None
    if isinstance(block, Image):
        url = block.url or f"data:{block.media_type};base64,{block.data}"
        return {"type": "input_image", "image_url": url, "detail": "auto"}
    if isinstance(block, Document) and block.source.get("type") == "base64":
        data_url = f"data:{block.source.get('media_type', 'application/pdf')};base64,{block.source.get('data', '')}"
        return {"type": "input_file", "filename": "document.pdf", "file_data": data_url}
    if isinstance(block, Document) and block.source.get("type") == "text":
        return {"type": "input_text", "text": block.source.get("data") or ""}
    return None


def _tool_output(result: ToolResult) -> dict:
    parts = [part for block in result.content if (part := _part(block))]
    if all(part["type"] == "input_text" for part in parts):
        output = "\n".join(part["text"] for part in parts) or "(no output)"
        output = "Error: " + output if result.is_error else output  # no error flag in Responses (§5.2 policy)
    else:
        output = parts
    return {"type": "function_call_output", "call_id": result.tool_use_id, "output": output}


def _tool(tool) -> dict:
    rendered = {"type": "function", "name": shorten(tool.name)}  # P-15
    if tool.description:
        rendered["description"] = tool.description
    rendered["parameters"] = tool.input_schema
    rendered["strict"] = bool(tool.strict)  # explicit: the Responses default (true) rejects most schemas
    return rendered


def _tool_choice(body: dict, req: ChatRequest) -> None:
    choice = req.tool_choice
    if choice is None:
        return
    if choice.type == "tool" and choice.name:
        body["tool_choice"] = {"type": "function", "name": shorten(choice.name)}
    else:
        body["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(choice.type, "auto")
    if choice.disable_parallel:
        body["parallel_tool_calls"] = False


def _text_format(response_format) -> dict:
    if response_format.type == "json_object":
        return {"type": "json_object"}
    rendered = {"type": "json_schema", "name": response_format.name or "output", "schema": response_format.schema}
    rendered["strict"] = response_format.strict is True
    return rendered


# --- the answer ----------------------------------------------------------------------------------------------


def parse_response(body: dict, req: ChatRequest) -> ChatResponse:
    names = tool_name_map(req)
    content: list = []
    refused = False
    for item in body.get("output") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            if text := reasoning_text(item):
                content.append(Thinking(text, signature=""))
        elif kind == "message":
            for part in item.get("content") or []:
                text, refusal = _part_text(part)
                refused = refused or refusal
                if text:
                    content.append(Text(text))
        elif kind == "function_call":
            name = item.get("name") or ""
            content.append(ToolUse(sanitize_tool_id(item.get("call_id")), names.get(name, name),
                                   parse_arguments(item.get("arguments"))))  # fmt: skip
        # hosted tool calls (web_search_call, ...) ran upstream; nothing to carry
    has_tools = any(isinstance(block, ToolUse) for block in content)
    stop_reason = stop_reason_for(body, has_tools)
    if refused and not has_tools:
        stop_reason = "refusal"
    return ChatResponse(id=message_id(), model=req.model, content=content, stop_reason=stop_reason,
                        usage=usage_from_wire(body.get("usage")))  # fmt: skip


def reasoning_text(item: dict) -> str:
    summary = [part.get("text") for part in item.get("summary") or [] if isinstance(part, dict)]
    return "\n\n".join(text for text in summary if isinstance(text, str) and text)


def _part_text(part) -> tuple[str, bool]:
    if not isinstance(part, dict):
        return "", False
    if part.get("type") == "refusal":
        return part.get("refusal") or "", True
    return (part.get("text") or "", False) if part.get("type") == "output_text" else ("", False)


def stop_reason_for(response: dict, has_tools: bool) -> str:
    if has_tools:  # P-1
        return "tool_use"
    details = response.get("incomplete_details") or {}
    return STOP_REASONS.get(details.get("reason"), "end_turn") if response.get("status") == "incomplete" else "end_turn"
