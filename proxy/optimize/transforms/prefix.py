"""Keep upstream prefix caching alive: OpenAI-compatible upstreams cache automatically on an exact prefix, so
a line that changes on every request near the start of the prompt (Claude Code's `x-anthropic-billing-header:
cc_version=...` system block, whose suffix changes with each prompt) makes every request a miss. When the
request is translated for such an upstream, the line is dropped (Anthropic upstreams keep it: it is theirs).
OpenAI Chat and Responses callers (Codex) send no such line (Codex's per-turn ids travel in `client_metadata`
and `prompt_cache_key`, outside the prompt): nothing to drop for them."""

VOLATILE_PREFIXES = ("x-anthropic-billing-header:",)


def apply(body: dict, fmt: str, opt, upstream: str) -> int | None:
    system = body.get("system") if fmt == "anthropic" and upstream != "anthropic" else None
    if not isinstance(system, list):
        return None
    kept = [b for b in system if not (isinstance(b, dict) and str(b.get("text", "")).startswith(VOLATILE_PREFIXES))]
    if len(kept) == len(system):
        return None
    saved = sum(len(b.get("text", "")) for b in system) - sum(len(b.get("text", "")) for b in kept)
    body["system"] = kept
    return saved
