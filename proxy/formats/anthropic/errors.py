"""Anthropic error JSON, both directions (§2.5, §5.12): any GatewayError -> status, body, headers for an Anthropic
caller; an Anthropic upstream's error response -> UpstreamError, with the original bytes kept so an Anthropic
caller gets them back byte-for-byte (Claude Code matches on error wording, §8)."""

import orjson

from ...errors import (
    KIND_STATUS, NOT_RETRYABLE_KINDS, GatewayError, RawError, UpstreamError, kind_for_status,
)

API = "anthropic"  # RawError.api of errors this format parsed

# kind -> (error.type, HTTP status); a None status means "the error's own status" (generic server errors)
ERROR_TYPES = {
    "invalid_request": ("invalid_request_error", 400),
    "authentication": ("authentication_error", 401),
    "billing": ("billing_error", 402),
    "permission": ("permission_error", 403),
    "not_found": ("not_found_error", 404),
    "request_too_large": ("request_too_large", 413),
    "rate_limit": ("rate_limit_error", 429),
    "api_error": ("api_error", None),
    "overloaded": ("overloaded_error", 529),  # 529, not 503: Claude Code retries overloads on 529
    "timeout": ("timeout_error", 504),
    "loop_detected": ("api_error", 508),  # no type of its own: the status names it (and parses back to it)
}
KINDS_BY_TYPE = {error_type: kind for kind, (error_type, _) in ERROR_TYPES.items() if kind != "loop_detected"}
RAW_HEADERS = ("retry-after", "retry-after-ms", "request-id", "x-should-retry")
CONTEXT_OVERFLOW_MARKERS = ("prompt is too long", "exceed context limit")  # P-25 wordings


def render_error(err: GatewayError) -> tuple[int, bytes, dict[str, str]]:
    raw = getattr(err, "raw", None)
    if raw is not None and raw.api == API and raw.relayable():
        return raw.status, raw.body, dict(raw.headers)  # §5.12: same-format errors go back unchanged
    error_type, status = ERROR_TYPES.get(err.kind, ("api_error", None))
    body = orjson.dumps({"type": "error", "error": {"type": error_type, "message": err.message}})
    headers = {}
    if err.retry_after:
        headers["retry-after"] = str(err.retry_after)
    if err.kind in NOT_RETRYABLE_KINDS:
        headers["x-should-retry"] = "false"
    return status or err.status, body, headers


def parse_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
    error_type, message = _read(body)
    kind = "loop_detected" if status == 508 else KINDS_BY_TYPE.get(error_type) or kind_for_status(status)
    headers = {name.lower(): value for name, value in headers.items()}
    overflow = kind == "invalid_request" and any(m in message for m in CONTEXT_OVERFLOW_MARKERS)
    return UpstreamError(
        message or f"upstream returned HTTP {status}",
        kind=kind,
        code="context_length_exceeded" if overflow else None,
        status=529 if kind == "overloaded" else status,
        retry_after=headers.get("retry-after"),
        raw=RawError(API, status, body, {n: v for n, v in headers.items() if n in RAW_HEADERS}),
    )


def stream_error(data: bytes) -> UpstreamError:
    """The payload of an `event: error` (same JSON as an error body, but the HTTP status was already 200)."""
    error_type, _ = _read(data)
    return parse_error(KIND_STATUS.get(KINDS_BY_TYPE.get(error_type), 500), data, {})


def _read(body: bytes) -> tuple[str | None, str]:
    """(error.type, message) from an Anthropic error body; for anything else, a short excerpt of the text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            error_type = error.get("type")
            return (error_type if isinstance(error_type, str) else None), error["message"]
        if isinstance(data.get("message"), str):  # some Anthropic-compatible servers
            return None, data["message"]
    excerpt = " ".join(body[:500].decode("utf-8", "replace").split())
    return None, excerpt[:200]
