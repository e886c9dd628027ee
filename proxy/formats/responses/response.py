"""ChatResponse -> Response object for a Responses caller, and the item and envelope builders the stream encoder
shares, so a stream's final object is the one `render_response` gives for the same answer.

Canonical blocks become output items in order: a run of text blocks -> one `message` item (one `output_text`
part per block), each thinking or redacted-thinking block -> one `reasoning` item (its text as the summary, the
block itself sealed into `encrypted_content`, R-5), each tool use -> a `function_call` item, or a
`custom_tool_call` item for a freeform tool (R-3). Stop reasons become `status` (R-10): max_tokens ->
`incomplete` / `max_output_tokens`, refusal -> `incomplete` / `content_filter` (as §5.6 maps it to Chat's
content_filter), anything else `completed`. Usage counts cached input inside `input_tokens` (R-9, P-21).
"""

import orjson

from proxy.canonical import ChatRequest, ChatResponse, RedactedThinking, Text, Thinking, ToolUse, Usage

from . import ids, reasoning
from ..openai.mappings import openai_usage
from .items_in import CUSTOM_INPUT

INCOMPLETE_REASONS = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "refusal": "content_filter",
}
ITEM_PREFIXES = {
    "message": ids.MESSAGE,
    "reasoning": ids.REASONING,
    "function_call": ids.FUNCTION_CALL,
    "custom_tool_call": ids.CUSTOM_TOOL_CALL,
}


def render_response(resp: ChatResponse, req: ChatRequest) -> dict:
    response_id, created_at = ids.new_id(ids.RESPONSE), ids.now()
    status, details = status_for(resp.stop_reason)
    output = []
    for kind, blocks in group_blocks(resp.content, custom_tools(req)):
        item_id = ids.new_id(ITEM_PREFIXES[kind])
        if kind == "message":
            output.append(message_item(item_id, [block.text for block in blocks], "completed"))
        elif kind == "reasoning":
            output.append(reasoning_item(item_id, blocks[0]))
        else:
            arguments = orjson.dumps(blocks[0].input).decode()
            output.append(tool_item(kind, item_id, blocks[0], arguments, "completed", namespaced(req)))
    if output and status == "incomplete":
        mark_incomplete(output[-1])
    return envelope(req, response_id, created_at, status, output, usage=resp.usage, incomplete_details=details)


def custom_tools(req: ChatRequest) -> frozenset:
    return getattr(req, "custom_tools", frozenset())  # a plain ChatRequest (another caller format) has none


def namespaced(req: ChatRequest) -> dict:
    return getattr(req, "namespaced", None) or {}


def group_blocks(content: list, custom: frozenset) -> list[tuple[str, list]]:
    """(item kind, blocks) in order; empty text blocks are skipped (P-6) and do not split a message."""
    groups: list[tuple[str, list]] = []
    for block in content:
        if isinstance(block, Text):
            if not block.text:
                continue
            if groups and groups[-1][0] == "message":
                groups[-1][1].append(block)
            else:
                groups.append(("message", [block]))
        elif isinstance(block, (Thinking, RedactedThinking)):
            groups.append(("reasoning", [block]))
        elif isinstance(block, ToolUse):
            groups.append(("custom_tool_call" if block.name in custom else "function_call", [block]))
    return groups  # tool results, images and documents never appear in an answer


def status_for(stop_reason: str | None) -> tuple[str, dict | None]:
    reason = INCOMPLETE_REASONS.get(stop_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


# --- items ---------------------------------------------------------------------------------------------------


def output_text(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, texts: list[str], status: str) -> dict:
    content = [output_text(text) for text in texts]
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, block, seal: bool = True) -> dict:
    """The thinking text is the summary (R-5: clients show summaries); the block travels sealed, when sealing
    is configured and the block is whole (a cut-off block's signature would not verify)."""
    text = block.thinking if isinstance(block, Thinking) else ""
    item = {"id": item_id, "type": "reasoning", "summary": [summary_text(text)] if text else []}
    sealed = reasoning.seal([block]) if seal else None
    if sealed is not None:
        item["encrypted_content"] = sealed
    return item


def summary_text(text: str) -> dict:
    return {"type": "summary_text", "text": text}


def tool_item(kind: str, item_id: str, block: ToolUse, arguments: str, status: str, names: dict | None = None) -> dict:
    """A function_call with its arguments string, or a custom_tool_call with its free-text input (R-3); a call
    of a namespaced tool carries the tool's own name and its `namespace` (`names`: request.py's namespaced)."""
    item = {"id": item_id, "type": kind, "status": status}
    namespace, name = names.get(block.name, (None, block.name)) if names else (None, block.name)
    if kind == "custom_tool_call":
        item = {**item, "call_id": block.id, "name": name, "input": custom_input(block.input)}
    else:
        item = {**item, "arguments": arguments, "call_id": block.id, "name": name}
    if namespace:
        item["namespace"] = namespace
    return item


def custom_input(arguments: dict) -> str:
    """The upstream called our one-string stand-in; anything else it sent is passed on as JSON text."""
    value = arguments.get(CUSTOM_INPUT)
    if isinstance(value, str) and set(arguments) == {CUSTOM_INPUT}:
        return value
    return orjson.dumps(arguments).decode() if arguments else ""


def mark_incomplete(item: dict) -> None:
    """The item the output stopped in (reasoning items carry no status)."""
    if "status" in item:
        item["status"] = "incomplete"


# --- the Response object -------------------------------------------------------------------------------------


def envelope(
    req: ChatRequest,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict],
    *,
    usage: Usage | None,
    incomplete_details: dict | None = None,
    error: dict | None = None,
) -> dict:
    """The Response object in OpenAI's key order; the request fields come from the parsed request's echo."""
    echo = getattr(req, "echo", None) or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens", req.max_tokens),
        "model": req.model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": echo.get("previous_response_id"),
        "reasoning": echo.get("reasoning", {"effort": None, "summary": None}),
        "store": echo.get("store", True),
        "temperature": echo.get("temperature", 1.0 if req.temperature is None else req.temperature),
        "text": echo.get("text", {"format": {"type": "text"}, "verbosity": "medium"}),
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_p": echo.get("top_p", 1.0 if req.top_p is None else req.top_p),
        "truncation": echo.get("truncation", "disabled"),
        "usage": None if usage is None else usage_to_wire(usage),
        "user": echo.get("user", req.user),
        "metadata": echo.get("metadata", {}),
    }


def empty_response(req: ChatRequest) -> dict:
    """The answer to `generate: false` (the WebSocket mode's warm-up: Codex sends its prompt and tools ahead of the
    first turn and continues from this id): completed, no output, no tokens."""
    return envelope(req, ids.new_id(ids.RESPONSE), ids.now(), "completed", [], usage=Usage())


def usage_to_wire(usage: Usage) -> dict:
    """R-9: input_tokens includes cache reads and writes; cached_tokens = cache reads."""
    input_tokens = usage.prompt_tokens
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": input_tokens + usage.output_tokens,
    }


def usage_from_wire(usage) -> Usage:
    """Responses usage -> canonical (input_tokens uncached only, P-21)."""
    if not isinstance(usage, dict):
        return Usage()
    input_details = usage.get("input_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or {}
    return openai_usage(usage.get("input_tokens"), usage.get("output_tokens"), input_details.get("cached_tokens"),
                        input_details.get("cache_write_tokens"), output_details.get("reasoning_tokens"))  # fmt: skip


def usage_from_response(body: dict) -> Usage:
    return usage_from_wire(body.get("usage"))
