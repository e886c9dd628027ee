"""OpenAI caller -> OpenAI-compatible upstream: the body goes through with only `model` swapped, and the stream
is relayed byte for byte, inspected for usage and errors on the way (docs/translation.md §5.0)."""

import orjson

from proxy.canonical import TargetOptions, Usage
from proxy.errors import UpstreamError

from .. import sse
from .errors import upstream_error
from .mappings import usage_from_openai


def passthrough_request(body: dict, target: TargetOptions) -> dict:
    """Key order and unknown fields kept. A stream always asks for usage (where the preset says the upstream
    accepts stream_options), so the ledger is exact; Relay hides the extra chunk from a client that did not ask
    for it. The output limit takes the name the upstream's preset wants (max_tokens <-> max_completion_tokens)."""
    caps = target.capabilities
    forwarded = dict(body)
    forwarded["model"] = target.remote_model
    if body.get("stream"):
        if caps.stream_usage:
            forwarded["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            forwarded.pop("stream_options", None)
    other = "max_tokens" if caps.max_tokens_param == "max_completion_tokens" else "max_completion_tokens"
    if other in forwarded and caps.max_tokens_param not in forwarded:
        forwarded[caps.max_tokens_param] = forwarded.pop(other)
    return forwarded


def usage_from_response(body: dict) -> Usage:
    return usage_from_openai(body.get("usage"))


class Relay:
    """Runs on every streamed byte, so it decodes JSON only for the few events that can matter: those with a
    non-null "usage" or an "error" key. (A JSON string cannot contain an unescaped quote, so these byte tests
    never match text inside content.)

    When the client asked for include_usage, every chunk is returned exactly as received. Otherwise the
    usage-only chunk (choices: []) is cut out, since strict clients choke on it (§5.11 B), and the events kept
    are re-framed; their data bytes are unchanged."""

    def __init__(self, req_body: dict):
        self._drop_usage_chunk = not (req_body.get("stream_options") or {}).get("include_usage")
        self._parser = sse.SSEParser()
        self.usage = Usage()
        self.complete = False
        self.error: UpstreamError | None = None

    def feed(self, chunk: bytes) -> bytes:
        return self._relay(chunk, self._parser.feed(chunk))

    def finish(self) -> bytes:
        forwarded = self._relay(b"", self._parser.finish())
        if not self.complete and self.error is None:
            self.error = UpstreamError("upstream stream ended before [DONE]", kind="api_error")
        return forwarded

    def _relay(self, chunk: bytes, events: list[sse.SSEEvent]) -> bytes:
        if not self._drop_usage_chunk:
            for event in events:
                self._inspect(event.data)
            return chunk
        return b"".join(sse.encode(event.event, event.data) for event in events if self._inspect(event.data))

    def _inspect(self, data: bytes) -> bool:
        """Records what the event says; False when the event must not reach the client."""
        if data == b"[DONE]":
            self.complete = True
            return True
        has_usage = b'"usage"' in data and b'"usage":null' not in data and b'"usage": null' not in data
        if not has_usage and b'"error"' not in data:
            return True
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(chunk, dict):
            return True
        if chunk.get("error"):
            error = chunk["error"]
            self.error = upstream_error(error if isinstance(error, dict) else {"message": str(error)})
            return True
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage_from_openai(chunk["usage"])
            return not (self._drop_usage_chunk and chunk.get("choices") == [])
        return True
