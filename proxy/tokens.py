"""A deterministic, dependency-free estimate of a request's input tokens.

Used where the upstream cannot tell us: `count_tokens` for OpenAI-compatible upstreams, and the input figure in
`message_start` before the upstream's real usage arrives (P-26). Rule: UTF-8 bytes / 4 for prose, / 3 for JSON
(tool schemas and tool inputs tokenize denser), plus a fixed overhead per message (4), per tool (8), per image
(1,600, Anthropic's figure for a ~1.15 megapixel image) and per document (1,500 per MB of base64, min 500).
"""

import orjson

from .canonical import ChatRequest, Document, Image, Text, Thinking, ToolResult, ToolUse

PER_MESSAGE, PER_TOOL, PER_IMAGE = 4, 8, 1600


def _text(s: str) -> int:
    return (len(s.encode()) + 3) // 4


def _json(value) -> int:
    return (len(orjson.dumps(value)) + 2) // 3


def _block(block) -> int:
    if isinstance(block, Text):
        return _text(block.text)
    if isinstance(block, Thinking):
        return _text(block.thinking)
    if isinstance(block, ToolUse):
        return _text(block.name) + _json(block.input)
    if isinstance(block, ToolResult):
        return 4 + sum(_block(b) for b in block.content)
    if isinstance(block, Image):
        return PER_IMAGE
    if isinstance(block, Document):
        data = block.source.get("data") or block.source.get("content") or ""
        return max(500, len(data) * 1500 // 1_000_000) if isinstance(data, str) else 500
    return 0


def estimate_input_tokens(request: ChatRequest) -> int:
    total = sum(_text(t.text) for t in request.system)
    for message in request.messages:
        total += PER_MESSAGE + sum(_block(b) for b in message.content)
    for tool in request.tools:
        total += PER_TOOL + _text(tool.name) + _text(tool.description or "") + _json(tool.input_schema)
    return max(total, 1)
