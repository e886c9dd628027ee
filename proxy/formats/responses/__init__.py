"""The OpenAI Responses API (POST /v1/responses), spoken by callers (Codex CLI, the openai SDK's
`client.responses`) and by upstreams (OpenAI models served only there). The surface is the one proxy.formats
describes.

    request.py     parse_request (-> ResponsesRequest), expand_previous, input_items, dropped_tools
    items_in.py    input items -> canonical messages
    response.py    render_response, usage_from_response, the item builders the stream shares
    stream.py      StreamEncoder (canonical -> Responses SSE), render_stream_error
    upstream.py    render_request, parse_response: another format's request to a Responses upstream
    stream_decoder.py  StreamDecoder (a Responses upstream's SSE -> canonical)
    errors.py      render_error, parse_error (Chat Completions' error body) and the mid-stream error shapes
    relay.py       passthrough_request, Relay
    reasoning.py   sealing thinking blocks into encrypted_content (R-5); `configure(secret)` at start-up
    ids.py         response and item ids, created_at (replaceable in tests)
    replay.py      a stored Response object given again, whole or as SSE (the response cache's hits)

Extras beyond the shared surface, for the core: `expand_previous(body, stored_items)` and `input_items(body)`
(previous_response_id and storage, R-8), `dropped_tools(body)` (R-4's header), `configure_reasoning(secret)`,
`StreamEncoder.final_response` (the streamed Response object, for storage), `empty_response(req)` (the
WebSocket mode's `generate: false`, proxy/ws.py), and `replay` (the response cache
stores this format's own object and gives it back through it, never through the canonical model).
"""

from .. import SURFACE
from . import replay
from .errors import parse_error, render_error
from .reasoning import configure as configure_reasoning
from .relay import Relay, passthrough_request
from .request import ResponsesRequest, dropped_tools, expand_previous, input_items, parse_request
from .response import empty_response, render_response, usage_from_response
from .stream import StreamEncoder, render_stream_error
from .stream_decoder import StreamDecoder
from .upstream import parse_response, render_request

NAME = "responses"

__all__ = [*SURFACE, "ResponsesRequest", "expand_previous", "input_items", "dropped_tools", "configure_reasoning",
           "replay", "empty_response"]


def render_limit_headers(limits, now: float) -> dict[str, str]:
    """Responses callers are OpenAI clients: they read the same x-ratelimit-* headers."""
    from ..openai import limits as openai_limits  # late: that module arrives with the rate-limit work

    return openai_limits.render_limit_headers(limits, now)
