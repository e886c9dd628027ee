"""OpenAI Chat Completions, spoken by callers (Cursor, Continue, OpenAI SDK users) and by upstreams (OpenAI,
DeepSeek, OpenRouter, Groq, vLLM, Ollama). The surface is the one every format exports (see formats/__init__.py);
`tool_name_map` is extra: it rebuilds the P-15 short-name map from a request.

    caller_request   parse_request          OpenAI body -> ChatRequest (§5.3, §5.4 via messages_in)
    upstream_request render_request         ChatRequest -> OpenAI body (§5.1, §5.2 via messages_out)
    response         render_response, parse_response       chat.completion both ways (§5.10)
    stream_encoder   StreamEncoder          canonical events -> chunks (§5.11 B)
    stream_decoder   StreamDecoder          chunks -> canonical events (§5.11 A)
    errors           render_error, parse_error              (§5.12)
    limits           render_limit_headers                   x-ratelimit-* headers
    passthrough      passthrough_request, usage_from_response, Relay
"""

from .. import SURFACE
from .caller_request import parse_request
from .errors import parse_error, render_error
from .limits import render_limit_headers
from .passthrough import Relay, passthrough_request, usage_from_response
from .response import parse_response, render_response
from .stream_decoder import StreamDecoder
from .stream_encoder import StreamEncoder, render_stream_error
from .tool_names import tool_name_map
from .upstream_request import render_request

NAME = "openai"

__all__ = [*SURFACE, "tool_name_map"]
