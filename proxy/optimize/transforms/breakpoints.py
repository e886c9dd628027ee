"""Prompt-cache breakpoints for Anthropic upstreams: `cache_control: {type: ephemeral}` on the last tool, the
last system block, and the last three human-side messages, latest first (the latest writes the cache, the
earlier ones are where the next turn's unchanged prefix ends: aider re-sends its edited files between the history
and the new prompt, so only the mark before them is read back), at most MAX in the whole request counting the
client's own, which are kept and never duplicated (Claude Code marks system[1], system[2] and its last user
block itself).

OpenAI callers' requests are marked the same way on their parts (the OpenAI parser keeps part-level
cache_control, LiteLLM's convention), which is where translated requests to Anthropic gain most.

Responses callers' requests are marked on their input parts too (the Responses parser keeps a text part's
cache_control, items_in._mark): the last leading developer/system message and the latest three user messages or
tool outputs (a string becomes one input_text part). Not the tools: a Responses tool list may be namespaces
whose inner tools are what reaches Anthropic. The response store keeps the input as the caller sent it, so a
mark never reaches a later turn's history."""

MAX = 4
MARK = {"type": "ephemeral"}


def _blocks(message: dict) -> list | None:
    """The message's block list, made a list if it was a string (so a block can carry the mark)."""
    content = message.get("content")
    if isinstance(content, str) and content:
        message["content"] = content = [{"type": "text", "text": content}]
    return content if isinstance(content, list) and content else None


def _marked(items) -> int:
    count = 0
    for item in items:
        if isinstance(item, dict):
            count += "cache_control" in item
            content = item.get("content")
            if isinstance(content, list):
                count += _marked(content)
    return count


def _candidates(body: dict, fmt: str) -> list:
    """Holders worth a breakpoint, best first: each is (section, a zero-arg function giving the dict to mark)."""
    out = []
    tools = body.get("tools")
    if fmt == "anthropic" and isinstance(tools, list) and tools and isinstance(tools[-1], dict):
        out.append(lambda: tools[-1])
    system = body.get("system")
    if fmt == "anthropic" and system:
        out.append(lambda: _system_tail(body))
    messages = body.get("messages") or []
    if fmt == "openai" and messages and messages[0].get("role") in ("system", "developer"):
        out.append(lambda: (_blocks(messages[0]) or [None])[-1])
    human = [m for m in messages if isinstance(m, dict) and m.get("role") in ("user", "tool")]
    for message in human[-1:-4:-1]:  # the latest three: aider puts its (edited) files between history and prompt
        out.append(lambda m=message: (_blocks(m) or [None])[-1])
    return out


def _responses_candidates(body: dict) -> list:
    items = [i for i in body.get("input") or () if isinstance(i, dict)] if isinstance(body.get("input"), list) else []
    out, leading = [], None
    for item in items:
        if item.get("type", "message") != "message" or item.get("role") not in ("developer", "system"):
            break
        leading = item
    if leading is not None:
        out.append(lambda: _last_text(leading, "content"))
    human = [i for i in items if i.get("role") == "user" or str(i.get("type", "")).endswith("call_output")]
    for item in human[-1:-4:-1]:
        out.append(lambda i=item: _last_text(i, "content" if "role" in i else "output"))
    return out


def _last_text(item: dict, key: str):
    """The item's last part if it is text (a string made one input_text part first), else None."""
    value = item.get(key)
    if isinstance(value, str) and value:
        item[key] = value = [{"type": "input_text", "text": value}]
    last = value[-1] if isinstance(value, list) and value else None
    return last if isinstance(last, dict) and last.get("type") in ("input_text", "output_text") else None


def _system_tail(body: dict):
    system = body["system"]
    if isinstance(system, str):
        body["system"] = system = [{"type": "text", "text": system}]
    return system[-1] if isinstance(system, list) and system else None


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    if upstream != "anthropic":
        return None
    used = _marked(body.get("tools") or ()) + _marked(body.get("messages") or ())
    if fmt == "responses" and isinstance(body.get("input"), list):
        outputs = [i["output"] for i in body["input"] if isinstance(i, dict) and isinstance(i.get("output"), list)]
        used += _marked(body["input"]) + sum(_marked(parts) for parts in outputs)
    system = body.get("system")
    used += _marked(system) if isinstance(system, list) else 0
    added = 0
    for holder in _responses_candidates(body) if fmt == "responses" else _candidates(body, fmt):
        if used >= MAX:
            break
        target = holder()
        if isinstance(target, dict) and "cache_control" not in target and target.get("type") != "thinking":
            target["cache_control"] = dict(MARK)
            used += 1
            added += 1
    return 0 if added else None


def unmarked(body: dict, fmt: str) -> dict:
    """`body` without any cache_control on its messages' (Responses: input items') parts, for a pass-through to
    an upstream that is not Anthropic: the layer marks for the route's first target, and a route that fails over
    from Anthropic to an OpenAI-compatible provider must not send it marks that a strict server refuses. The
    body is shared by the attempts, so changed items are copies and `body` itself stays as it is."""
    key = "input" if fmt == "responses" else "messages"
    items = body.get(key)
    if not isinstance(items, list):
        return body
    return {**body, key: [_item_unmarked(item) for item in items]}


def _item_unmarked(item):
    if not isinstance(item, dict):
        return item
    out = item
    for key in ("content", "output"):
        parts = item.get(key)
        if isinstance(parts, list) and any(isinstance(p, dict) and "cache_control" in p for p in parts):
            kept = [{k: v for k, v in p.items() if k != "cache_control"} if isinstance(p, dict) else p for p in parts]
            out = {**out, key: kept}
    return out
