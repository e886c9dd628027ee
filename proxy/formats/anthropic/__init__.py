"""The Anthropic Messages wire format (POST /v1/messages), spoken by callers (Claude Code, Anthropic SDKs) and by
upstreams (api.anthropic.com and compatible endpoints). The surface is the one proxy.formats describes:

    request.py            parse_request, parse_count_tokens_request        caller body -> ChatRequest
    upstream_request.py   render_request, passthrough_request              ChatRequest / caller body -> upstream body
    response.py           render_response, parse_response, usage_from_response
    stream.py             StreamEncoder (canonical -> SSE), StreamDecoder (SSE -> canonical)
    relay.py              Relay: pass-through SSE, watched for usage and errors
    errors.py             render_error, parse_error
    limits.py             render_limit_headers
    wire.py               block and usage JSON shared by the above
"""

from .. import SURFACE
from .errors import parse_error, render_error
from .limits import render_limit_headers
from .relay import Relay
from .request import parse_count_tokens_request, parse_request
from .response import parse_response, render_response, usage_from_response
from .stream import StreamDecoder, StreamEncoder, render_stream_error
from .upstream_request import passthrough_request, render_request

NAME = "anthropic"

__all__ = [*SURFACE, "parse_count_tokens_request"]
