"""Wire formats. One package per API (`anthropic`, `openai`, `responses`); each is spoken by callers AND by
upstreams, so each exposes both directions. Pure functions and small state machines over bytes and dicts: no I/O,
no Django, no settings. Every package exports exactly this surface:

    NAME: str                                    "anthropic" | "openai" | "responses" (the API it speaks;
                                                 the registry's key names the ingress, e.g. "bedrock")

    # caller side ----------------------------------------------------------------------------------------
    parse_request(body: dict) -> ChatRequest      validate + convert; raises errors.InvalidRequest(param=...)
    render_response(resp: ChatResponse, req: ChatRequest) -> dict       model echoed = req.model
    StreamEncoder(req: ChatRequest)               .encode(event: StreamEvent) -> bytes   (b"" when nothing to send)
    render_error(err: GatewayError) -> tuple[int, bytes, dict[str, str]]   status, JSON body, extra headers
                                                  (raw upstream bytes when err.raw came from the same format)
    render_stream_error(err: GatewayError) -> bytes   the error as this API's mid-stream error event
    render_limit_headers(limits: Limits, now: float) -> dict[str, str]   this API's rate-limit headers

    # upstream side --------------------------------------------------------------------------------------
    render_request(req: ChatRequest, target: TargetOptions) -> dict     body for this API's upstream
    parse_response(body: dict, req: ChatRequest) -> ChatResponse
    StreamDecoder(req: ChatRequest)               .feed(chunk: bytes) -> list[StreamEvent]
                                                  .finish() -> list[StreamEvent]   (at upstream EOF; a truncated
                                                  stream yields StreamError, never a clean MessageStop)
    parse_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamError   (with raw kept)

    # same format on both sides (pass-through) -------------------------------------------------------------
    passthrough_request(body: dict, target: TargetOptions) -> dict      model swapped, key order kept
    usage_from_response(body: dict) -> Usage
    Relay(req_body: dict)                         .feed(chunk: bytes) -> bytes   bytes to forward (unchanged
                                                  unless the format needs an edit), .finish() -> bytes,
                                                  .usage: Usage, .complete: bool, .error: GatewayError | None

The caller's format and the upstream's format meet only through proxy.canonical, in proxy.core.
"""

from importlib import import_module

# The names above, which every format package exports (its __all__ starts with these).
SURFACE = tuple("""NAME parse_request render_response StreamEncoder render_error render_stream_error render_limit_headers
    render_request parse_response StreamDecoder parse_error passthrough_request usage_from_response Relay""".split())

FORMATS = {
    "anthropic": "proxy.formats.anthropic",
    "openai": "proxy.formats.openai",
    "responses": "proxy.formats.responses",
    # Envelopes of another API, caller side only (NAME is the API they carry, so a same-API upstream gets a
    # pass-through): each adds `envelope(body, model_id, stream, headers) -> (body, headers)`, the request inside.
    "bedrock": "proxy.formats.bedrock",
    "vertex": "proxy.formats.vertex",
}


def get(name: str):
    return import_module(FORMATS[name])
