"""Canonical -> Anthropic JSON for content blocks and usage, shared by the request renderer, the response
renderer and the stream encoder, plus the reverse for usage (responses, streams and the pass-through relay)."""

from dataclasses import replace

from ...canonical import Document, Image, RedactedThinking, Text, Thinking, ToolResult, ToolUse, Usage
from ...ids import sanitize_tool_id

STOP_REASONS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"}
)


def block_to_wire(block) -> dict:
    if isinstance(block, Text):
        wire = {"type": "text", "text": block.text}
    elif isinstance(block, ToolUse):
        # P-16: ids that came from another provider may contain characters Anthropic rejects
        wire = {"type": "tool_use", "id": sanitize_tool_id(block.id), "name": block.name, "input": _object(block.input)}
    elif isinstance(block, ToolResult):
        wire = {"type": "tool_result", "tool_use_id": sanitize_tool_id(block.tool_use_id)}
        content = [block_to_wire(b) for b in block.content if not is_blank_text(b)]
        if content:
            wire["content"] = content
        if block.is_error:
            wire["is_error"] = True
    elif isinstance(block, Thinking):
        wire = {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    elif isinstance(block, RedactedThinking):
        wire = {"type": "redacted_thinking", "data": block.data}
    elif isinstance(block, Image):
        if block.data:
            source = {"type": "base64", "media_type": block.media_type, "data": block.data}
        else:
            source = {"type": "url", "url": block.url}
        wire = {"type": "image", "source": source}
    elif isinstance(block, Document):
        wire = {"type": "document", "source": block.source}
        if block.title is not None:
            wire["title"] = block.title
        if block.context is not None:
            wire["context"] = block.context
    else:
        raise TypeError(f"not a content block: {block!r}")
    cache_control = getattr(block, "cache_control", None)
    if cache_control:
        wire["cache_control"] = cache_control
    return wire


def is_blank_text(block) -> bool:
    return isinstance(block, Text) and not block.text.strip()


def _object(value) -> dict:
    """tool_use.input must be a JSON object; anything else is wrapped rather than rejected upstream."""
    return value if isinstance(value, dict) else {"value": value}


def usage_to_wire(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }


def usage_from_wire(raw: dict | None, base: Usage | None = None) -> Usage:
    """Anthropic usage JSON -> Usage. With `base`, only the counts present in `raw` replace base's: a
    message_delta's usage is cumulative but may omit the input figures message_start gave (§2.4)."""
    usage = Usage() if base is None else replace(base)
    if not isinstance(raw, dict):
        return usage
    for wire_name, field in _USAGE_FIELDS:
        value = raw.get(wire_name)
        if isinstance(value, int):
            setattr(usage, field, value)
    creation = raw.get("cache_creation")  # {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}: priced apart
    if isinstance(creation, dict) and isinstance(creation.get("ephemeral_1h_input_tokens"), int):
        usage.cache_write_1h_tokens = creation["ephemeral_1h_input_tokens"]
    details = raw.get("output_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
        usage.reasoning_tokens = details["thinking_tokens"]
    return usage


_USAGE_FIELDS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
    ("cache_creation_input_tokens", "cache_write_tokens"),
)


def stop_reason_from_wire(value) -> str:
    return value if value in STOP_REASONS else "end_turn"
