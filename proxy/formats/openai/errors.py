"""OpenAI error bodies, both directions (docs/translation.md §4.4, §5.12)."""

import re

import orjson

from proxy.errors import (
    KIND_BY_STATUS, NOT_RETRYABLE_KINDS, GatewayError, RawError, UpstreamError, kind_for_status,
)

# kind -> (status, type, default code) as an OpenAI client expects them (§5.12)
RENDERED_BY_KIND = {
    "invalid_request": (400, "invalid_request_error", None),
    "authentication": (401, "invalid_request_error", "invalid_api_key"),
    "billing": (429, "insufficient_quota", "insufficient_quota"),
    "permission": (403, "permission_error", None),
    "not_found": (404, "invalid_request_error", "model_not_found"),
    "request_too_large": (413, "invalid_request_error", None),
    "rate_limit": (429, "rate_limit_error", "rate_limit_exceeded"),
    "api_error": (500, "server_error", None),
    "overloaded": (503, "server_error", "server_is_overloaded"),
    "timeout": (504, "server_error", None),
    "loop_detected": (508, "server_error", "loop_detected"),
}
KEPT_HEADERS = ("retry-after", "retry-after-ms", "x-request-id", "x-should-retry")
CONTEXT_OVERFLOW = re.compile(r"maximum context length|context window|context_length_exceeded|prompt is too long", re.I)
MAX_CONTEXT = re.compile(r"maximum context length is (\d+)")
PROMPT_TOKENS = re.compile(r"(\d+) in (?:your prompt|the messages)|resulted in (\d+) tokens|has (\d+) input tokens")
COMPLETION_TOKENS = re.compile(r"(\d+) (?:for|in) the completion")
EXCERPT_CHARS = 500


def error_type(err: GatewayError) -> str:
    return RENDERED_BY_KIND.get(err.kind, RENDERED_BY_KIND["api_error"])[1]


def render_error(err: GatewayError) -> tuple[int, bytes, dict[str, str]]:
    raw = getattr(err, "raw", None)
    if raw is not None and raw.api == "openai" and raw.relayable():  # same format upstream: its exact bytes (§5.12)
        return raw.status, raw.body, dict(raw.headers)
    status, type_, code = RENDERED_BY_KIND.get(err.kind, RENDERED_BY_KIND["api_error"])
    if err.kind == "api_error" and 500 <= err.status <= 599:
        status = err.status  # 502 "could not connect" stays 502
    body = {"error": {"message": err.message, "type": type_, "param": err.param, "code": err.code or code}}
    headers = {}
    if err.retry_after:
        headers["retry-after"] = str(err.retry_after)
    if raw is not None and "retry-after-ms" in raw.headers:
        headers["retry-after-ms"] = raw.headers["retry-after-ms"]
    if err.kind in NOT_RETRYABLE_KINDS:
        headers["x-should-retry"] = "false"
    return status, orjson.dumps(body), headers


def parse_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
    error = _error_object(body)
    kind = kind_for_status(status)
    error_from = upstream_error(error, kind=kind)
    error_from.retry_after = headers.get("retry-after")
    error_from.raw = RawError(
        api="openai", status=status, body=body, headers={k: headers[k] for k in KEPT_HEADERS if k in headers}
    )
    return error_from


def upstream_error(error: dict, *, kind: str | None = None) -> UpstreamError:
    """From an OpenAI error object. Without an HTTP status (an error inside a stream) the kind comes from the
    object's own type/code, or its numeric code as some providers (OpenRouter) send one."""
    message = error.get("message") if isinstance(error.get("message"), str) else "upstream error"
    type_, code = error.get("type"), error.get("code")
    if kind is None:
        kind = KIND_BY_STATUS.get(code) if isinstance(code, int) else None
        kind = kind or _kind_from_labels(f"{type_} {code}".lower())
    labels = f"{type_} {code}".lower()
    if kind == "rate_limit" and "insufficient_quota" in labels:
        kind = "billing"
    code = code if isinstance(code, str) else None
    overflow = code == "context_length_exceeded" or CONTEXT_OVERFLOW.search(message)
    if overflow and kind in ("invalid_request", "request_too_large"):
        kind, code, message = "invalid_request", "context_length_exceeded", _context_overflow_message(message)
    param = error.get("param") if isinstance(error.get("param"), str) else None
    return UpstreamError(message, kind=kind, code=code, param=param)


def _kind_from_labels(labels: str) -> str:
    for needle, kind in (
        ("insufficient_quota", "billing"),
        ("rate_limit", "rate_limit"),
        ("overloaded", "overloaded"),
        ("context_length_exceeded", "invalid_request"),
        ("invalid_request", "invalid_request"),
        ("invalid_api_key", "authentication"),
        ("authentication", "authentication"),
        ("permission", "permission"),
        ("not_found", "not_found"),
        ("timeout", "timeout"),
    ):
        if needle in labels:
            return kind
    return "api_error"


def _context_overflow_message(message: str) -> str:
    """P-25: Claude Code recognises Anthropic's wording and compacts on it; keep the upstream's numbers."""
    maximum = MAX_CONTEXT.search(message)
    prompt = PROMPT_TOKENS.search(message)
    if not maximum or not prompt:
        return message
    limit, prompt_tokens = int(maximum.group(1)), int(next(g for g in prompt.groups() if g))
    completion = COMPLETION_TOKENS.search(message)
    if prompt_tokens <= limit and completion:
        return (
            f"input length and `max_tokens` exceed context limit: {prompt_tokens} + {completion.group(1)} > {limit}, "
            "decrease input length or `max_tokens` and try again"
        )
    return f"prompt is too long: {prompt_tokens} tokens > {limit} maximum"


def _error_object(body: bytes) -> dict:
    """{"error": {...}} normally; also {"error": "text"}, vLLM's top-level {"message", "type", "code"}, or text."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error
        if isinstance(error, str) and error:
            return {"message": error}
    excerpt = body[:EXCERPT_CHARS].decode("utf-8", "replace").strip()
    return {"message": excerpt or "upstream returned an empty error body"}
