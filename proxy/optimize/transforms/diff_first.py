"""Diff-first: ask for unified diffs instead of whole files, with the project's instruction appended to the
system prompt (after the client's own text, so the client's cached prefix is untouched)."""


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
    else:
        messages = body.get("messages") or []
        first_other = next((i for i, m in enumerate(messages) if m.get("role") not in ("system", "developer")), 0)
        messages.insert(first_other, {"role": "system", "content": text})
    return 0
