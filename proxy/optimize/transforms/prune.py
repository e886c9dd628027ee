"""Context pruning: when the estimated input is above the project's ceiling, drop the oldest turns.

Cuts fall only where a human turn starts (a user message with no tool results), so a tool_use and its
tool_result always go or stay together, and every assistant message of the turns kept (with its signed
thinking) stays as it was. Never dropped: the system prompt and `role: system` messages. The first turn kept
starts with a one-line note of what was dropped. At least the latest human turn is always kept.

Responses callers: the turns are `input` items and a human turn starts at a user `message` item with no call
left open before it (every function_call / custom_tool_call before the cut has its output before the cut), so
a call and its output go or stay together, and a reasoning item goes or stays with the turn whose items follow
it (OpenAI refuses a reasoning item without its following item). Never dropped: `instructions`, system and
developer messages, and Codex's `additional_tools` item (role developer: its tools).
"""

import orjson

from .shape import text_size, tokens

SYSTEM_ROLES = ("system", "developer")
CALLS = ("function_call", "custom_tool_call")
OUTPUTS = ("function_call_output", "custom_tool_call_output")


def _human_turn(message: dict) -> bool:
    if not isinstance(message, dict) or message.get("role") != "user":
        return False
    content = message.get("content")
    return not (isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content))


def _turn_starts(items: list, fmt: str) -> list[int]:
    """Indexes where a human turn starts (the first item's included)."""
    if fmt != "responses":
        return [k for k, m in enumerate(items) if _human_turn(m)]
    starts, open_calls = [], set()
    for k, item in enumerate(items):
        kind = item.get("type", "message") if isinstance(item, dict) else None
        call_id = str(item.get("call_id")) if kind in CALLS or kind in OUTPUTS else None  # str: always hashable
        if kind in CALLS:
            open_calls.add(call_id)
        elif kind in OUTPUTS:
            open_calls.discard(call_id)
        elif kind == "message" and item.get("role") == "user" and not open_calls:
            starts.append(k)
    return starts


def _kept(item) -> bool:
    """Never dropped: system-side items (Responses' additional_tools item has role developer too)."""
    return isinstance(item, dict) and item.get("role") in SYSTEM_ROLES


def _with_note(turn: dict, note: str, fmt: str) -> dict:
    turn = dict(turn)
    content = turn.get("content")
    if isinstance(content, list):
        turn["content"] = [{"type": "input_text" if fmt == "responses" else "text", "text": note}, *content]
    else:
        turn["content"] = f"{note}\n\n{content or ''}"
    return turn


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    field = "input" if fmt == "responses" else "messages"
    messages = body.get(field)
    ceiling = opt.prune_max_tokens
    if not ceiling or not isinstance(messages, list):
        return None
    total = tokens(text_size(body, fmt))
    if total <= ceiling:
        return None
    sizes = [len(orjson.dumps(m)) for m in messages]
    human = _turn_starts(messages, fmt)
    starts = [k for k in human if k >= 1]
    if not starts:
        return None
    first = human[0] if human else 0
    for cut in starts:  # the earliest cut that fits (else the latest: at least the last human turn stays)
        dropped = sum(s for i, s in enumerate(sizes[first:cut], first) if not _kept(messages[i]))
        if total - tokens(dropped) <= ceiling:
            break
    if cut <= first:
        return None
    kept_system = [m for m in messages[first:cut] if _kept(m)]
    gone = [m for m in messages[first:cut] if not _kept(m)]
    note = f"[gateway: {len(gone)} earlier messages dropped to keep the context under {ceiling} tokens]"
    body[field] = messages[:first] + [_with_note(messages[cut], note, fmt)] + kept_system + messages[cut + 1:]
    return dropped - len(note)  # the sizes of `gone`, measured once above
