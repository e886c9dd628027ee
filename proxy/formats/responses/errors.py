"""Errors for Responses callers and upstreams. The HTTP error body is Chat Completions' (`{"error": {message,
type, param, code}}`), so formats.openai renders and parses it; this module adds the two mid-stream shapes.

A failure after the stream started is sent twice over (R-2): an `error` event, which carries the documented
flat fields and also the `error` object the live API nests (the openai SDK raises APIError on that object, and
on nothing else), then `response.failed`, whose `response.error` Codex reads to decide whether to retry. That
object's `code` is limited to the SDK's ResponseError codes; the full OpenAI code stays in the `error` event.
"""

import re
from dataclasses import replace

from proxy.errors import GatewayError, UpstreamError

from ..openai import errors as openai_errors

API = "responses"  # RawError.api of errors parsed from a Responses upstream
FAILED_CODES = {"rate_limit": "rate_limit_exceeded", "invalid_request": "invalid_prompt"}  # else server_error
RETRY_HINT = re.compile(r"try again in", re.I)


def render_error(err: GatewayError) -> tuple[int, bytes, dict[str, str]]:
    raw = getattr(err, "raw", None)
    if raw is not None and raw.api == API and raw.relayable():  # same format upstream: its exact bytes (§5.12)
        return raw.status, raw.body, dict(raw.headers)
    return openai_errors.render_error(err)


def parse_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
    err = openai_errors.parse_error(status, body, headers)
    err.raw = replace(err.raw, api=API)
    return err


def error_fields(err: GatewayError) -> dict:
    """type, code, message, param, as the HTTP error body would carry them."""
    rendered = openai_errors.RENDERED_BY_KIND
    _, error_type, default_code = rendered.get(err.kind, rendered["api_error"])
    return {"type": error_type, "code": err.code or default_code, "message": _message(err), "param": err.param}


def response_error(err: GatewayError) -> dict:
    """`response.error` of a failed Response (openai SDK's ResponseError)."""
    fields = error_fields(err)
    code = FAILED_CODES.get(err.kind, "server_error")
    return {"code": code, "message": fields["message"], "param": err.param, "type": fields["type"]}


def _message(err: GatewayError) -> str:
    """Codex waits as long as a rate-limit message says ("try again in 2s"); say it when we know it."""
    if err.kind == "rate_limit" and err.retry_after and not RETRY_HINT.search(err.message):
        seconds = str(err.retry_after).strip()
        if seconds.replace(".", "", 1).isdigit():
            return f"{err.message} Please try again in {seconds}s."
    return err.message
