"""Where the text is, in each caller format (Anthropic Messages, OpenAI Chat Completions, OpenAI Responses), as
slots a layer can read and rewrite in place: `(kind, message index, container, key, tool id)` where
`container[key]` is a str (for Responses the index is the `input` item's, -1 for `instructions`).

kind: "system" (top-level system, Responses `instructions`, role system/developer messages), "user" (a user's
own text) or "tool_result" (Responses: function_call_output / custom_tool_call_output, with its call_id).
Assistant messages are never offered: their text, tool calls and (signed) thinking stay byte-identical; for
Responses that is every assistant `message`, `function_call`, `custom_tool_call` and `reasoning` item (whose
encrypted_content must reach the upstream exactly as it left it), and any item kind not named above.
"""

TOOL_RESULT, USER, SYSTEM = "tool_result", "user", "system"


def slots(body: dict, fmt: str):
    if fmt == "anthropic":
        yield from _anthropic(body)
    elif fmt == "responses":
        yield from _responses(body)
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


RESPONSES_TEXT_PARTS = ("input_text", "output_text")  # a user-side part may be either (items_in.py accepts both)
RESPONSES_OUTPUTS = ("function_call_output", "custom_tool_call_output")


def _responses(body):
    if isinstance(body.get("instructions"), str):
        yield SYSTEM, -1, body, "instructions", None
    items = body.get("input")
    if isinstance(items, str):  # the whole input is one user message
        yield USER, 0, body, "input", None
        return
    for i, item in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")  # an EasyInputMessage may omit its type
        if kind in RESPONSES_OUTPUTS:
            yield from _responses_parts(item, "output", TOOL_RESULT, i, item.get("call_id"))
        elif kind == "message" and item.get("role") in ("user", "system", "developer"):
            yield from _responses_parts(item, "content", USER if item["role"] == "user" else SYSTEM, i, None)


def _responses_parts(holder, key, kind, i, tool_id):
    value = holder.get(key)
    if isinstance(value, str):
        yield kind, i, holder, key, tool_id
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, dict) and part.get("type") in RESPONSES_TEXT_PARTS:
                if isinstance(part.get("text"), str):
                    yield kind, i, part, "text", tool_id


def text_size(body: dict, fmt: str) -> int:
    """Characters of the prompt a layer may count against (system, messages and tool schemas; for Responses
    `instructions`, `input` and `tools`), for estimates."""
    import orjson

    if fmt == "responses":
        return len(orjson.dumps(body.get("input") or "")) + len(orjson.dumps(body.get("instructions") or "")) + len(
            orjson.dumps(body.get("tools") or [])
        )
    return len(orjson.dumps(body.get("messages") or [])) + len(orjson.dumps(body.get("system") or "")) + len(
        orjson.dumps(body.get("tools") or [])
    )


def tokens(chars: int) -> int:
    """The gateway's estimate: ~4 characters a token (the same rule as the policies' reservation)."""
    return chars // 4
