"""Diff-first: ask for unified diffs instead of whole files, with the project's instruction appended to the
system prompt (after the client's own text, so the client's cached prefix is untouched).

Responses callers: after `instructions` when the caller sends them; otherwise (Codex sends none: its system
prompt is a developer message) as a developer message right after the leading system/developer items of
`input`. Either way the text lands after the client's own system text and at the same place on every turn, so
the prefix an upstream caches (OpenAI's automatic prefix cache, the system prompt a translated Anthropic
request hoists them into, R-7) is the client's own followed by one constant block. A new `instructions` field
would instead go before the client's developer prompt and change the start of every request."""


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    text = opt.diff_first_text.strip()
    if not text:
        return None
    if fmt == "anthropic":
        system = body.get("system")
        if isinstance(system, list):
            body["system"] = [*system, {"type": "text", "text": text}]
        elif isinstance(system, str) and system:
            body["system"] = f"{system}\n\n{text}"
        else:
            body["system"] = text
    elif fmt == "responses":
        return 0 if _responses(body, text) else None
    else:
        messages = body.get("messages") or []
        first_other = next((i for i, m in enumerate(messages) if m.get("role") not in ("system", "developer")), 0)
        messages.insert(first_other, {"role": "system", "content": text})
    return 0


def _responses(body: dict, text: str) -> bool:
    instructions, items = body.get("instructions"), body.get("input")
    if isinstance(instructions, str) and instructions:
        body["instructions"] = f"{instructions}\n\n{text}"
    elif isinstance(items, list):
        leading = next((i for i, item in enumerate(items) if not _system_side(item)), len(items))
        items.insert(leading, {"type": "message", "role": "developer", "content": text})
    elif instructions is None or instructions == "":  # a string input: no client text to come after
        body["instructions"] = text
    else:
        return False  # instructions of another type: the caller's error to hear about, unchanged
    return True


def _system_side(item) -> bool:
    return isinstance(item, dict) and item.get("type", "message") in ("message", "additional_tools") and item.get(
        "role"
    ) in ("system", "developer")
