"""Multi-step agent turns for the Responses wire: `THEN: <script line>` lines in the last user message.

Without them the fake answers a tool result with "Done: ...", which ends an agent's turn after one tool round.
A real Codex turn reads, edits and runs several things in a row, each a new request that replays the growing
history, so a recorded session (tests/fixtures/sessions/record_codex.py) needs the fake to chain tool calls:

    Read both files.
    USE_TOOL: exec_command {"cmd": "cat app.py"}            <- step 0: the first request
    THEN: USE_TOOL: exec_command {"cmd": "cat utils.py"}    <- step 1: once step 0's call came back
    THEN: SAY: Both read.                                   <- step 2: once step 1's call came back

Which step is due comes from the number of tool calls in the history after that user message: step k+1 once
steps 0..k's USE_TOOL calls are all there (parallel calls and any item layout count alike). Past the last
step the fake falls back to its usual "Done: ...". A message with no THEN line is read exactly as before.
"""

import re

THEN = re.compile(r"^[ \t]*THEN:[ \t]?(.*)$", re.M)
USE_TOOL = re.compile(r"\bUSE_TOOL:")
CALLS = ("function_call", "custom_tool_call")


def script_text(items: list, text: str) -> str:
    """The text to read the script from: `text` (the wire's own choice) unless the last user message has THEN
    lines, then the step that is due ("" past the last one, so the tool results decide)."""
    last = _last_user(items)
    if last is None:
        return text
    prompt, calls = last
    steps = THEN.findall(prompt)
    if not steps:
        return text
    done = 0
    for step in [THEN.sub("", prompt), *steps]:
        if calls == done:
            return step
        done += len(USE_TOOL.findall(step))
    return ""


def _last_user(items: list) -> tuple[str, int] | None:
    """(text of the last user message, tool calls after it)."""
    calls = 0
    for item in reversed(items):
        if not isinstance(item, dict):
            continue
        if item.get("type") in CALLS:
            calls += 1
        elif item.get("type", "message") == "message" and item.get("role") == "user":
            return _text(item.get("content")), calls
    return None


def _text(content) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else ()
    return "\n".join(p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
