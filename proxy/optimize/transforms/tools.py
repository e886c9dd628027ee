"""Tool trimming: the tool definitions a coding client sends with every request are often the largest fixed part
of its prompt (Claude Code 2.1's 24 tools are ~16k tokens, more than its system prompt and most conversations),
and a provider's prompt cache only makes them cheaper to re-read, never free: on the recorded Claude Code session
they are more than half of the bill once everything else is cached. Two settings, each changing what the model
is told about its tools (the README says so; both are opt-in):

    cap_tool_description_chars   every description in a tool (the tool's own and each parameter's) is cut to at
                                 most N characters, keeping whole paragraphs, else whole sentences, from the
                                 start (where the clients say what the tool does), then MARK
    drop_tools                   tools named here (names or patterns: Cron*, *Worktree) are removed, except one
                                 the conversation already calls, one `tool_choice` names, or one the client
                                 marked with cache_control (its breakpoint would go with it)

Names, schemas and types are never changed, so every call the model makes is still valid for the client. The
result depends only on the request, so it is byte-identical on every turn and the cached prefix stays stable.
Formats: Anthropic (`description`, `input_schema`), OpenAI Chat (`function.description`, `function.parameters`)
and Responses (`description`, `parameters`; namespace tools and Codex's `additional_tools` input item too);
server tools without a description (web search) are left alone. `drop_tools` matches top-level names (a
namespace goes whole, and stays while the conversation calls one of its tools).
"""

from fnmatch import fnmatchcase

import orjson

MARK = " [...]"
# Where JSON Schema nests schemas (a tool definition is walked as one too: its `input_schema` / `parameters`);
# one pass over each node's keys with a dict lookup is ~3x faster than asking every node for every key.
TEXT, ONE, MAP, LIST = "text", "one", "map", "list"
NESTS = {"description": TEXT, "input_schema": ONE, "parameters": ONE, "items": ONE, "additionalProperties": ONE,
         "not": ONE, "properties": MAP, "$defs": MAP, "definitions": MAP, "patternProperties": MAP,
         "anyOf": LIST, "oneOf": LIST, "allOf": LIST, "prefixItems": LIST,
         "tools": LIST}  # fmt: skip
# ("tools" is no JSON Schema word: it is where a Responses namespace tool keeps its own tools.)


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    saved, used = 0, _used(body, fmt) if opt.drop_tools else None
    for holder in _tool_lists(body, fmt):
        if used is not None:
            saved += _drop(holder, fmt, opt.drop_tools, used)
        limit = opt.cap_tool_description_chars
        for tool in holder["tools"] if limit else ():
            definition = tool.get("function") if fmt == "openai" and isinstance(tool, dict) else tool
            if isinstance(definition, dict):
                saved += _cap_descriptions(definition, limit)
    return saved or None


def _tool_lists(body: dict, fmt: str):
    """The dicts whose "tools" list holds definitions: the body, and for Responses the `additional_tools` input
    items of Codex's "lite" format (whose namespace tools nest theirs: NESTS walks them)."""
    if isinstance(body.get("tools"), list) and body["tools"]:
        yield body
    items = body.get("input") if fmt == "responses" else None
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("type") == "additional_tools" and isinstance(item.get("tools"), list):
            yield item


def shorten(text: str, limit: int) -> str:
    """The longest start of `text` made of whole paragraphs (else sentences, else words) within `limit`, + MARK."""
    if len(text) <= limit:
        return text
    room = max(0, limit - len(MARK))
    head = text[:room]
    for stop in ("\n\n", "\n", ". ", " "):
        at = head.rfind(stop)
        if at > room // 3:  # a boundary too near the start would throw most of the room away
            head = head[: at + (1 if stop == ". " else 0)]
            break
    return head.rstrip() + MARK


def _cap_descriptions(schema, limit: int) -> int:
    """Cut the `description` of `schema` and of every schema nested in it (in place); -> characters removed.
    Only schema positions are walked, so a value that happens to hold a "description" key (a default, an
    enum member, an example) is data and stays."""
    saved = 0
    for key, child in schema.items():
        nests = NESTS.get(key)
        if nests is None:
            continue
        if nests is TEXT:
            if isinstance(child, str) and len(child) > limit:
                schema[key] = shorten(child, limit)
                saved += len(child) - len(schema[key])
            continue
        if nests is ONE:
            children = (child,)
        elif nests is MAP:
            children = child.values() if isinstance(child, dict) else ()
        else:
            children = child if isinstance(child, list) else ()
        for each in children:
            if isinstance(each, dict):
                saved += _cap_descriptions(each, limit)
    return saved


def _drop(holder: dict, fmt: str, patterns: tuple[str, ...], keep: set) -> int:
    kept, saved = [], 0
    for tool in holder["tools"]:
        name = _name(tool, fmt)
        if name and name not in keep and "cache_control" not in tool and any(fnmatchcase(name, p) for p in patterns):
            saved += _size(tool)
            continue
        kept.append(tool)
    if saved and kept:
        holder["tools"] = kept
        return saved
    return 0  # nothing matched, or every tool would go (a request with tools: [] means something else)


def _name(tool, fmt: str) -> str | None:
    if not isinstance(tool, dict):
        return None
    name = (tool.get("function") or {}).get("name") if fmt == "openai" else tool.get("name")
    return name if isinstance(name, str) else None


def _used(body: dict, fmt: str) -> set[str]:
    """Tool names the conversation calls or tool_choice forces: dropping one would strand its calls."""
    used = set()
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        used.add(choice.get("name") or (choice.get("function") or {}).get("name"))
    items = body.get("input") if fmt == "responses" else body.get("messages")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        if fmt == "responses" and item.get("type") in ("function_call", "custom_tool_call"):
            used.update((item.get("name"), item.get("namespace")))  # a namespace tool goes whole
        calls = item.get("tool_calls") if fmt == "openai" else None
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                used.add((call.get("function") or {}).get("name"))
        content = item.get("content") if fmt == "anthropic" else None
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") in ("tool_use", "server_tool_use"):
                used.add(block.get("name"))
    return used


def _size(tool: dict) -> int:
    return len(orjson.dumps(tool))
