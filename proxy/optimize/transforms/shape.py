"""Where the text is, in either caller format (Anthropic Messages or OpenAI Chat Completions), as slots a layer
can read and rewrite in place: `(kind, message index, container, key, tool id)` where `container[key]` is a str.

kind: "system" (top-level system, role system/developer messages), "user" (a user's own text) or "tool_result".
Assistant messages are never offered: their text, tool calls and (signed) thinking stay byte-identical.
"""

TOOL_RESULT, USER, SYSTEM = "tool_result", "user", "system"


def slots(body: dict, fmt: str):
    if fmt == "anthropic":
        yield from _anthropic(body)
    else:
        yield from _openai(body)


def _anthropic(body):
    system = body.get("system")
    if isinstance(system, str):
        yield SYSTEM, -1, body, "system", None
    elif isinstance(system, list):
        for block in system:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                yield SYSTEM, -1, block, "text", None
    for i, message in enumerate(body.get("messages") or ()):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "system"):
            continue
        kind = SYSTEM if role == "system" else USER
        content = message.get("content")
        if isinstance(content, str):
            yield kind, i, message, "content", None
            continue
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                yield kind, i, block, "text", None
            elif block.get("type") == "tool_result":
                yield from _parts(block, "content", i, block.get("tool_use_id"))


def _parts(holder, key, i, tool_id):
    value = holder.get(key)
    if isinstance(value, str):
        yield TOOL_RESULT, i, holder, key, tool_id
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                yield TOOL_RESULT, i, part, "text", tool_id


def _openai(body):
    for i, message in enumerate(body.get("messages") or ()):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            yield from _parts(message, "content", i, message.get("tool_call_id"))
            continue
        if role not in ("user", "system", "developer"):
            continue
        kind = USER if role == "user" else SYSTEM
        content = message.get("content")
        if isinstance(content, str):
            yield kind, i, message, "content", None
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                    yield kind, i, part, "text", None


def text_size(body: dict, fmt: str) -> int:
    """Characters of the prompt a layer may count against (system, messages and tool schemas), for estimates."""
    import orjson

    return len(orjson.dumps(body.get("messages") or [])) + len(orjson.dumps(body.get("system") or "")) + len(
        orjson.dumps(body.get("tools") or [])
    )


def tokens(chars: int) -> int:
    """The gateway's estimate: ~4 characters a token (the same rule as the policies' reservation)."""
    return chars // 4
