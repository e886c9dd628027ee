"""Caps: at most N characters for the system prompt (each part), a user message's text and a tool result's text,
cut in the middle (the start and the end usually matter most) with a marker saying how much was cut."""

from .shape import SYSTEM, TOOL_RESULT, USER, slots


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit} characters cut by the gateway ...]\n"
    head = max(0, (limit - len(marker)) // 2)
    tail = max(0, limit - len(marker) - head)
    return text[:head] + marker + (text[-tail:] if tail else "")


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    limits = {SYSTEM: opt.cap_system_chars, USER: opt.cap_message_chars, TOOL_RESULT: opt.cap_tool_result_chars}
    saved = 0
    for kind, _i, holder, key, _tool in list(slots(body, fmt)):
        limit = limits[kind]
        text = holder[key]
        if limit and len(text) > limit:
            holder[key] = cut(text, limit)
            saved += len(text) - len(holder[key])
    return saved or None
