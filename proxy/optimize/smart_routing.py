"""Smart routing: the project may send a request to another model alias than the one asked for, by the first
rule that matches (claude-code-router's scenarios, then a complexity score):

    background    the request asks for a small model (Claude Code's title, summary and Explore calls: *haiku*)
    think         thinking is on (Anthropic `thinking` enabled/adaptive, OpenAI `reasoning_effort` not none)
    long_context  the estimated input is above `long_context_tokens`
    web_search    a web-search tool is present
    complex       the latest user prompt scores `complexity_threshold` or more: 2 per keyword (architect,
                  security, migration, ...), 1 per file reference (at most 3), 1 for more than 5 tools, 1 for
                  a prompt over 2,000 characters and 1 more over 8,000
    default       every other request

A rule whose alias is empty in the project's settings is skipped. The chosen alias goes through the key's
model allow-list like any requested one; the answer still names the model the client asked for.
How to add a scenario: a field `route_<name>` on accounts.models.ProjectOptimization, a test below in RULES.
"""

import re

FILE_REF = re.compile(r"(?:[\w.-]+/)+[\w.-]+\.\w{1,8}\b|\b[\w-]+\.(?:py|js|ts|tsx|jsx|go|rs|java|rb|c|h|cpp|cs|php|sql|md|yml|yaml|json|toml)\b")


def choose(opt, body: dict, body_bytes: int) -> tuple[str | None, str]:
    """(alias, rule) of the first matching rule, or (None, "") to keep the requested model."""
    model = body.get("model")
    for rule, alias, matches in (
        ("background", opt.route_background, lambda: isinstance(model, str) and "haiku" in model),
        ("think", opt.route_think, lambda: _thinking(body)),
        ("long_context", opt.route_long_context, lambda: _estimate(body, body_bytes) > opt.long_context_tokens),
        ("web_search", opt.route_web_search, lambda: _web_search(body)),
        ("complex", opt.route_complex, lambda: complexity(body, opt.keywords) >= opt.complexity_threshold),
        ("default", opt.route_default, lambda: True),
    ):
        if alias and matches():
            return alias, rule
    return None, ""


def _thinking(body: dict) -> bool:
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        return True
    effort = body.get("reasoning_effort")
    return isinstance(effort, str) and effort not in ("none", "minimal")


def _estimate(body: dict, body_bytes: int) -> int:
    if body_bytes:
        return body_bytes // 4
    import orjson

    return len(orjson.dumps(body)) // 4


def _web_search(body: dict) -> bool:
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict):
            continue
        kind = str(tool.get("type", ""))
        name = str(tool.get("name") or (tool.get("function") or {}).get("name") or "")
        if kind.startswith("web_search") or name.lower().replace("_", "") == "websearch":
            return True
    return False


def latest_prompt(body: dict) -> str:
    """The text of the last user message (tool results excluded)."""
    for message in reversed(body.get("messages") or ()):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
            if texts:
                return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def complexity(body: dict, keywords) -> int:
    prompt = latest_prompt(body)
    lowered = prompt.lower()
    score = 2 * sum(1 for word in keywords if word and word in lowered)
    score += min(3, len(FILE_REF.findall(prompt)))
    score += len(body.get("tools") or ()) > 5
    score += (len(prompt) > 2000) + (len(prompt) > 8000)
    return score
