"""Context pruning: when the estimated input is above the project's ceiling, drop the oldest turns.

Cuts fall only where a human turn starts (a user message with no tool results), so a tool_use and its
tool_result always go or stay together, and every assistant message of the turns kept (with its signed
thinking) stays as it was. Never dropped: the system prompt and `role: system` messages. The first turn kept
starts with a one-line note of what was dropped. At least the latest human turn is always kept."""

import orjson

from .shape import text_size, tokens

SYSTEM_ROLES = ("system", "developer")


def _human_turn(message: dict) -> bool:
    if not isinstance(message, dict) or message.get("role") != "user":
        return False
    content = message.get("content")
    return not (isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content))


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    messages = body.get("messages")
    ceiling = opt.prune_max_tokens
    if not ceiling or not isinstance(messages, list):
        return None
    total = tokens(text_size(body, fmt))
    if total <= ceiling:
        return None
    sizes = [len(orjson.dumps(m)) for m in messages]
    starts = [k for k in range(1, len(messages)) if _human_turn(messages[k])]
    if not starts:
        return None
    first = next((i for i, m in enumerate(messages) if _human_turn(m)), 0)
    cut = starts[-1]
    for k in starts:  # the earliest cut that fits
        dropped = sum(s for i, s in enumerate(sizes[first:k], first) if messages[i].get("role") not in SYSTEM_ROLES)
        if total - tokens(dropped) <= ceiling:
            cut = k
            break
    if cut <= first:
        return None
    kept_system = [m for m in messages[first:cut] if m.get("role") in SYSTEM_ROLES]
    gone = [m for m in messages[first:cut] if m.get("role") not in SYSTEM_ROLES]
    note = f"[gateway: {len(gone)} earlier messages dropped to keep the context under {ceiling} tokens]"
    turn = dict(messages[cut])
    content = turn.get("content")
    if isinstance(content, list):
        turn["content"] = [{"type": "text", "text": note}, *content]
    else:
        turn["content"] = f"{note}\n\n{content or ''}"
    body["messages"] = messages[:first] + [turn] + kept_system + messages[cut + 1:]
    return sum(len(orjson.dumps(m)) for m in gone) - len(note)
