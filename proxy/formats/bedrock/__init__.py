"""Amazon Bedrock's envelope of the Anthropic Messages API, caller side only (Claude Code with
CLAUDE_CODE_USE_BEDROCK=1 and ANTHROPIC_BEDROCK_BASE_URL=https://<gateway>/bedrock; views in proxy/api.py):

    POST /bedrock/model/{model}/invoke                       a complete answer (the Messages response JSON)
    POST /bedrock/model/{model}/invoke-with-response-stream  the Messages stream events in AWS event-stream
                                                             frames (stream.py, eventstream.py)

The body is the Messages body without `model` and `stream`, plus `anthropic_version` (dropped) and
`anthropic_beta` (a list: merged into the `anthropic-beta` header the upstream gets, `envelope`). The model id
in the URL is mapped onto an Anthropic model name by proxy/formats/envelope.py. Everything else is the Anthropic
format's (NAME is "anthropic": an Anthropic upstream gets the body as a pass-through); errors are Anthropic's
JSON with the message also at the top level, where Bedrock's own errors carry it.
"""

import orjson

from ..anthropic import (
    parse_count_tokens_request, parse_error, parse_request, parse_response, passthrough_request,
    render_limit_headers, render_request, render_response, usage_from_response,
)  # fmt: skip
from ..anthropic import render_error as anthropic_error
from ..envelope import unwrap
from .stream import Relay, StreamDecoder, StreamEncoder, render_stream_error

NAME = "anthropic"
STREAM_MEDIA_TYPE = "application/vnd.amazon.eventstream"

__all__ = [
    "NAME", "parse_request", "parse_count_tokens_request", "render_response", "StreamEncoder", "render_error",
    "render_request", "parse_response", "StreamDecoder", "parse_error", "passthrough_request",
    "usage_from_response", "Relay", "render_stream_error", "render_limit_headers", "envelope",
]  # fmt: skip


def envelope(body: dict, model_id: str, stream: bool, headers):
    """(the Messages body, the headers an upstream call reads): the body's `anthropic_beta` list joins the
    `anthropic-beta` header's values (each once, header first), as Bedrock itself takes them from the body."""
    listed = body.pop("anthropic_beta", None)
    if isinstance(listed, list) and listed:
        header = [v.strip() for v in headers.get("anthropic-beta", "").split(",") if v.strip()]
        merged = ",".join(dict.fromkeys(header + [v for v in listed if isinstance(v, str)]))
        headers = {**{name.lower(): value for name, value in headers.items()}, "anthropic-beta": merged}
    return unwrap(body, model_id, stream), headers


def render_error(err) -> tuple[int, bytes, dict[str, str]]:
    status, body, headers = anthropic_error(err)
    try:
        data = orjson.loads(body)
        message = data["error"]["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return status, body, headers
    return status, orjson.dumps({"message": message, **data}), headers
