"""IDE boilerplate stripping: instruction blocks that coding clients re-send with every turn, each found by a
stable marker (never by its prose, which changes between client versions).

A marker is `START ... END` (remove each span from START through END) or a lone `START` (remove a text part
that starts with it, whole). Built in:
  - Claude Code's reminder appended to every file a tool reads (`<system-reminder>` inside a tool result);
  - aider's closing `role: system` reminder, which repeats the rules of its first system message after the
    last user message (kept when it is the only system message).
Projects add their own markers in the admin or the config file (`optimize.boilerplate_markers`).
How to add a built-in: append to BUILT_IN (a marker line) or, for a structural rule, a function to RULES.
"""

from .shape import TOOL_RESULT, slots

BUILT_IN = {TOOL_RESULT: ("<system-reminder> ... </system-reminder>",)}


def _spans(text: str, start: str, end: str) -> str:
    out, at = [], 0
    while (i := text.find(start, at)) >= 0:
        j = text.find(end, i + len(start))
        if j < 0:
            break
        out.append(text[at:i])
        at = j + len(end)
    return "".join(out) + text[at:] if out else text


def strip(text: str, markers) -> str:
    for marker in markers:
        start, sep, end = marker.partition(" ... ")
        if sep:
            text = _spans(text, start.strip(), end.strip()).rstrip() if start.strip() in text else text
        elif text.startswith(marker):
            return ""
    return text


def _aider_reminder(body: dict, fmt: str) -> int:
    messages = body.get("messages") or []
    if fmt != "openai" or len(messages) < 3 or messages[-1].get("role") != "system":
        return 0
    if messages[0].get("role") != "system" or not isinstance(messages[-1].get("content"), str):
        return 0
    return len(messages.pop()["content"])


RULES = (_aider_reminder,)


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    saved = sum(rule(body, fmt) for rule in RULES)
    for kind, _i, holder, key, _tool in list(slots(body, fmt)):
        markers = BUILT_IN.get(kind, ()) + opt.markers
        text = holder[key]
        stripped = strip(text, markers)
        if stripped != text:
            holder[key] = stripped or "[boilerplate removed by the gateway]"
            saved += len(text) - len(holder[key])
    return saved or None
