"""File de-duplication: a tool result whose text is identical to an earlier tool result in the same
conversation (the same file read twice) becomes a one-line reference to the earlier one. Short results (under
MIN_CHARS) are left alone: a reference would not be much shorter. The replacement depends only on the
conversation, so it is the same on every later turn and the prompt-cache prefix stays stable."""

from .shape import TOOL_RESULT, slots

MIN_CHARS = 200


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    seen: dict[str, str] = {}
    saved = 0
    for kind, _i, holder, key, tool_id in list(slots(body, fmt)):
        text = holder[key]
        if kind != TOOL_RESULT or len(text) < MIN_CHARS:
            continue
        first = seen.get(text)
        if first is None:
            seen[text] = tool_id or "an earlier call"
            continue
        holder[key] = f"[identical to the result of tool call {first} above; {len(text)} characters not repeated]"
        saved += len(text) - len(holder[key])
    return saved or None
