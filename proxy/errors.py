"""Every failure the gateway reports, as one exception tree rendered once, in the caller's format.

GatewayError                        kind                 status
 ├── InvalidRequest                 invalid_request      400  (names the offending `param`)
 ├── AuthenticationFailed           authentication       401
 ├── PermissionDenied               permission           403
 ├── NotFound                       not_found            404  (unknown or not-allowed model)
 ├── RequestTooLarge                request_too_large    413
 ├── RateLimited                    rate_limit           429  (our own RPM/TPM/concurrency limits; retry_after)
 ├── BudgetExceeded                 billing              402 Anthropic / 429 insufficient_quota OpenAI
 ├── Unavailable                    overloaded           529 Anthropic / 503 OpenAI (every account cooling
 │                                                            down, or the policy store down and fail-closed)
 ├── LoopDetected                   loop_detected        508  (the request already passed through this gateway:
 │                                                            proxy/hop.py; an upstream's 508 parses to it too)
 └── UpstreamError                  any kind             the upstream's, mapped (see formats/*/errors)
      kinds only upstreams produce: api_error 500/502, overloaded 529/503, timeout 504

`formats.<api>.render_error(err)` turns any of these into that API's error JSON and status; the core never
builds an error body itself. An UpstreamError from an upstream that speaks the caller's own format keeps the
upstream's exact bytes in `raw`, so the caller sees them unchanged (Claude Code matches on error wording).
`headers` are added to the error response as they are (rate-limit headers, the request id).
"""

import logging
from dataclasses import dataclass

import orjson
from django.conf import settings

log = logging.getLogger(__name__)

# An upstream's HTTP status -> our error kind, for upstreams of every format (an error body's own type, where a
# format has one, comes first); other statuses: api_error from 500 up, invalid_request below (kind_for_status).
KIND_BY_STATUS = {
    400: "invalid_request",
    401: "authentication",
    402: "billing",
    403: "permission",
    404: "not_found",
    408: "timeout",
    409: "api_error",
    413: "request_too_large",
    429: "rate_limit",
    500: "api_error",
    502: "api_error",  # a bad gateway stays a 502 for the caller (never relabelled as the provider overloaded)
    503: "overloaded",
    504: "timeout",
    508: "loop_detected",
    529: "overloaded",
}
# Kinds a client should not retry as they are: rendered with `x-should-retry: false` in every format.
NOT_RETRYABLE_KINDS = frozenset({"invalid_request", "authentication", "permission", "not_found", "billing",
                                 "loop_detected"})  # fmt: skip


def kind_for_status(status: int) -> str:
    return KIND_BY_STATUS.get(status) or ("api_error" if status >= 500 else "invalid_request")


KIND_STATUS = {
    "invalid_request": 400,
    "authentication": 401,
    "billing": 402,
    "permission": 403,
    "not_found": 404,
    "request_too_large": 413,
    "rate_limit": 429,
    "api_error": 500,
    "overloaded": 529,
    "timeout": 504,
    "loop_detected": 508,
}


@dataclass(slots=True)
class RawError:
    """An upstream error response exactly as received."""

    api: str  # the wire format that produced it: "anthropic" | "openai"
    status: int
    body: bytes
    headers: dict[str, str]  # only the ones worth passing on: retry-after*, request-id, x-should-retry

    def relayable(self) -> bool:
        """The body is a JSON object, so relaying it byte for byte keeps the caller's format (an upstream's HTML or
        text error page is rendered by the gateway instead)."""
        try:
            return isinstance(orjson.loads(self.body), dict)
        except orjson.JSONDecodeError:
            return False


class GatewayError(Exception):
    kind = "api_error"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        if kind:
            self.kind = kind
        self.param = param
        self.code = code  # OpenAI-style code, e.g. model_not_found, context_length_exceeded, insufficient_quota
        self.status = status or KIND_STATUS.get(self.kind, 500)
        self.retry_after = retry_after
        self.headers: dict[str, str] = {}

    def __repr__(self):
        return f"{type(self).__name__}({self.kind}, {self.status}, {self.message!r})"


class InvalidRequest(GatewayError):
    kind = "invalid_request"


class AuthenticationFailed(GatewayError):
    kind = "authentication"


class PermissionDenied(GatewayError):
    kind = "permission"


class NotFound(GatewayError):
    kind = "not_found"


class RequestTooLarge(GatewayError):
    kind = "request_too_large"


# The endpoints that take batch inputs: OpenAI's Files API takes batch files up to 200 MB and Anthropic's Message
# Batches bodies up to 256 MB, far more than any model call needs. Only these get GATEWAY_MAX_UPLOAD_BYTES, so
# the model API keeps its smaller limit (GATEWAY_MAX_BODY_BYTES).
UPLOAD_PATHS = frozenset({"/v1/files", "/v1/messages/batches"})


def body_limit(path: str = "") -> int:
    """The most bytes a request body to `path` may have: the one rule every size check uses (the header checks in
    gateway_site/asgi.py and daphne_guard.py, the body read, the views)."""
    return settings.GATEWAY_MAX_UPLOAD_BYTES if path in UPLOAD_PATHS else settings.GATEWAY_MAX_BODY_BYTES


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"request body exceeds {limit} bytes")


def check_length(content_length: str | None, path: str) -> None:
    """RequestTooLarge when a request's declared Content-Length passes its path's limit (before the body is read)."""
    limit = body_limit(path)
    if content_length and content_length.isdigit() and int(content_length) > limit:
        raise too_large(limit)


def json_object(raw: bytes) -> dict:
    """A request body that must be one JSON object (model calls, batches, the management API); anything else is
    an InvalidRequest that says what was wrong."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


class RateLimited(GatewayError):
    kind = "rate_limit"


class BudgetExceeded(GatewayError):
    kind = "billing"

    def __init__(self, message: str, **kwargs):
        super().__init__(message, code="insufficient_quota", **kwargs)


class Unavailable(GatewayError):
    kind = "overloaded"


class LoopDetected(GatewayError):
    kind = "loop_detected"


class UpstreamError(GatewayError):
    """An upstream failed or refused; `raw` is the upstream's own response, if it sent one. Whether another
    account or target is tried is proxy/attempts.py's verdict (from the status and x-should-retry)."""

    def __init__(self, message: str, *, raw: RawError | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.raw = raw


def unexpected(exc: Exception, where: str) -> GatewayError:
    """The error to answer for an exception nothing else caught: a 400 for what the caller's input caused and
    can be named (JSON nested deeper than orjson serialises: 254 levels; it parses up to 1024, so a body that
    parsed can still fail wherever it is written out again), else a logged 500."""
    if isinstance(exc, TypeError) and "Recursion limit reached" in str(exc):
        return InvalidRequest("request body is nested too deeply (JSON objects and arrays: at most 250 levels)")
    log.error("unexpected error in %s", where, exc_info=exc)
    return GatewayError("internal gateway error", kind="api_error")
