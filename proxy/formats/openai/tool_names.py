"""P-15: OpenAI function names must match ^[a-zA-Z0-9_-]{1,64}$; Anthropic allows 128 characters and Claude Code's
MCP tools (`mcp__server__tool`) often exceed 64. Invalid names are shortened deterministically (LiteLLM's scheme),
so the reverse map can be rebuilt from the request alone, with no state kept between request and response."""

import hashlib
import re

from proxy.canonical import ChatRequest, ToolUse

_VALID_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def shorten(name: str) -> str:
    """Valid names stay; others become their first 55 characters (invalid ones replaced by "_") + "_" + 8 hex
    digits of sha256(name). The hash keeps "a.b" and "a_b" apart."""
    if _VALID_NAME.match(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{_INVALID_CHARS.sub('_', name)[:55]}_{digest}"


def tool_name_map(req: ChatRequest) -> dict[str, str]:
    """{shortened name: original name} for every name render_request had to shorten (tools and history)."""
    names = {tool.name for tool in req.tools}
    names.update(block.name for message in req.messages for block in message.content if isinstance(block, ToolUse))
    return {short: name for name in names if (short := shorten(name)) != name}
