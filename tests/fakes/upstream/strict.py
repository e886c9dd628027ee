"""The conversation rules a real upstream enforces and the scripted fake does not check on every request, as a
validator the cost-optimization tests run over transformed requests (returns the problems; [] = accepted).

Anthropic Messages: the first non-system message is the user's; user and assistant alternate (role "system"
messages aside); every tool_use is answered by a tool_result in the next user message and every tool_result
answers a tool_use of the assistant message just before it; no empty text block; at most 4 cache_control
breakpoints. OpenAI Chat: every assistant tool_call is answered by a role "tool" message before the next
assistant or user message, and every tool message answers one. OpenAI Responses (`input` items, as OpenAI's own
API refuses them): every function_call / custom_tool_call is answered by an output item of the same call_id
after it, and every output answers an earlier call; a reasoning item is followed by the item it reasoned for
(an assistant message or a call, never a user message or the end: "provided without its required following
item"); no empty input_text / output_text part, and `input` not empty.
"""

MAX_BREAKPOINTS = 4


def anthropic_problems(body: dict) -> list[str]:
    problems, previous = [], None
    messages = [m for m in body.get("messages") or [] if m.get("role") != "system"]
    if not messages or messages[0].get("role") != "user":
        problems.append("messages: the first message must be the user's")
    for i, message in enumerate(messages):
        role, blocks = message.get("role"), _blocks(message)
        if previous is not None and previous.get("role") == role:
            problems.append(f"messages.{i}: roles must alternate")
        for block in blocks:
            if block.get("type") == "text" and not block.get("text"):
                problems.append(f"messages.{i}: text content blocks must be non-empty")
        if role == "user":
            asked = {b["id"] for b in _blocks(previous or {}) if b.get("type") == "tool_use"}
            answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if answered - asked:
                problems.append(f"messages.{i}: tool_result without a tool_use in the previous message")
            if asked - answered:
                problems.append(f"messages.{i}: tool_use ids without tool_result: {sorted(asked - answered)}")
        previous = message
    if messages and messages[-1].get("role") == "assistant" and any(b.get("type") == "tool_use" for b in _blocks(messages[-1])):
        problems.append("messages: a tool_use is never answered")
    if _breakpoints(body) > MAX_BREAKPOINTS:
        problems.append("A maximum of 4 blocks with cache_control may be provided")
    return problems


def openai_problems(body: dict) -> list[str]:
    problems, pending = [], set()
    for i, message in enumerate(body.get("messages") or []):
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                problems.append(f"messages.{i}: a tool message must answer a preceding tool_call")
            pending.discard(message.get("tool_call_id"))
            continue
        if role in ("user", "assistant") and pending:
            problems.append(f"messages.{i}: tool_call_ids did not have response messages: {sorted(pending)}")
            pending = set()
        if role == "assistant":
            pending = {c["id"] for c in message.get("tool_calls") or []}
    if pending:
        problems.append(f"tool_call_ids did not have response messages: {sorted(pending)}")
    return problems


RESPONSES_CALLS = {"function_call": "function_call_output", "custom_tool_call": "custom_tool_call_output"}
FOLLOWS_REASONING = ("message", "function_call", "custom_tool_call", "web_search_call")


def responses_problems(body: dict) -> list[str]:
    items = body.get("input")
    if isinstance(items, str):
        return [] if items else ["input: must not be empty"]
    if not isinstance(items, list) or not items:
        return ["input: must be a non-empty string or array"]
    problems, open_calls = [], {}
    for i, item in enumerate(items):
        kind = item.get("type", "message")
        if kind in RESPONSES_CALLS:
            open_calls[item.get("call_id")] = RESPONSES_CALLS[kind]
        elif kind in RESPONSES_CALLS.values():
            if open_calls.pop(item.get("call_id"), None) != kind:
                problems.append(f"input[{i}]: No tool call found for {kind} with call_id {item.get('call_id')}")
        elif kind == "reasoning":
            following = items[i + 1] if i + 1 < len(items) else None
            if following is None or following.get("type", "message") not in FOLLOWS_REASONING or (
                following.get("type", "message") == "message" and following.get("role") != "assistant"
            ):
                problems.append(f"input[{i}]: reasoning item provided without its required following item")
        for part in item.get("content") if kind == "message" and isinstance(item.get("content"), list) else ():
            if part.get("type") in ("input_text", "output_text") and not part.get("text"):
                problems.append(f"input[{i}]: text content parts must be non-empty")
        if kind == "message" and item.get("content") == "":
            problems.append(f"input[{i}]: message content must be non-empty")
    problems += [f"No tool output found for call {call_id}" for call_id in open_calls]
    return problems


def _blocks(message: dict) -> list[dict]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _breakpoints(body: dict) -> int:
    count = sum("cache_control" in t for t in body.get("tools") or [])
    system = body.get("system")
    count += sum("cache_control" in b for b in system) if isinstance(system, list) else 0
    for message in body.get("messages") or []:
        for block in _blocks(message):
            count += "cache_control" in block
            inner = block.get("content")
            count += sum("cache_control" in b for b in inner if isinstance(b, dict)) if isinstance(inner, list) else 0
    return count
