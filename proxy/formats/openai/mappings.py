"""The two tables every OpenAI translation shares: finish_reason <-> stop_reason (§5.6) and usage (§5.7, P-21)."""

import orjson

from proxy.canonical import Usage

FINISH_REASON_BY_STOP_REASON = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

STOP_REASON_BY_FINISH_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason_for(stop_reason: str | None, has_tool_calls: bool) -> str:
    if has_tool_calls:  # P-1
        return "tool_calls"
    return FINISH_REASON_BY_STOP_REASON.get(stop_reason or "", "stop")


def stop_reason_for(finish_reason: str | None, has_tool_calls: bool) -> str:
    if has_tool_calls:  # P-1: several compatible servers say "stop" next to tool calls
        return "tool_use"
    return STOP_REASON_BY_FINISH_REASON.get(finish_reason or "", "end_turn")


def _count(value) -> int:
    """A token count as a provider reported it: a positive int, anything else (None, a bool, a string) is 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_usage(prompt, completion, cache_read, cache_write, reasoning) -> Usage:
    """OpenAI's prompt count (Chat's prompt_tokens, Responses' input_tokens) includes the cached tokens read and
    written; canonical input_tokens does not (P-21). Shared by Chat and Responses usage."""
    cache_read, cache_write = _count(cache_read), _count(cache_write)
    return Usage(
        input_tokens=max(_count(prompt) - cache_read - cache_write, 0),
        output_tokens=_count(completion),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning if isinstance(reasoning, int) else None,
    )


def usage_from_openai(usage: dict | None) -> Usage:
    """Chat usage -> canonical, with the cache fields of the compatible servers that name them otherwise."""
    if not isinstance(usage, dict):
        return Usage()
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cache_read = prompt_details.get("cached_tokens")
    if cache_read is None:
        cache_read = usage.get("prompt_cache_hit_tokens")  # DeepSeek
    cache_write = prompt_details.get("cache_write_tokens")
    if cache_write is None:
        cache_write = prompt_details.get("cache_creation_tokens")  # routers fronting Anthropic models
    return openai_usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), cache_read, cache_write,
                        completion_details.get("reasoning_tokens"))  # fmt: skip


def usage_to_openai(usage: Usage) -> dict:
    prompt = usage.prompt_tokens
    rendered = {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
    }
    if usage.reasoning_tokens is not None:
        rendered["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return rendered


def parse_arguments(arguments) -> dict:
    """Tool-call arguments from an upstream: bad JSON becomes {} (the turn is already generated; failing it
    would lose the whole answer), a non-object is wrapped as {"value": ...}."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}
