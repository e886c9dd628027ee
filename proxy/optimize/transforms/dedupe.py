"""File de-duplication: a tool result whose text is identical to an earlier tool result in the same
conversation (the same file read twice) becomes a one-line reference to the earlier one. Short results (under
MIN_CHARS) are left alone: a reference would not be much shorter. The replacement depends only on the
conversation, so it is the same on every later turn and the prompt-cache prefix stays stable. A volatile header
(VOLATILE_HEADER) is not compared and stays in front of the reference."""

import re

from .shape import TOOL_RESULT, slots

MIN_CHARS = 200
# A header that differs on every call although the output is the same: Codex's exec_command output starts with a
# random "Chunk ID", the wall time and the exit code, then "Output:". The output after it is what is compared and
# replaced; the header stays, so the model still sees this call's exit code.
VOLATILE_HEADER = re.compile(r"Chunk ID: [^\n]*\n(?:[^\n]*\n){0,6}?Output:\n")


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    seen: dict[str, str] = {}
    saved = 0
    for kind, _i, holder, key, tool_id in list(slots(body, fmt)):
        text = holder[key]
        if kind != TOOL_RESULT or len(text) < MIN_CHARS:
            continue
        header = VOLATILE_HEADER.match(text)
        head = header.group(0) if header else ""
        output = text[len(head):]
        first = seen.get(output)
        if first is None:
            seen[output] = tool_id or "an earlier call"
            continue
        note = f"[identical to the result of tool call {first} above; {len(output)} characters not repeated]"
        holder[key] = head + note
        saved += len(text) - len(holder[key])
    return saved or None
