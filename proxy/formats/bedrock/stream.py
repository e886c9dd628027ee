"""Messages stream events in Bedrock's event-stream frames: the Anthropic format's own encoder and relay make the
events (proxy/formats/anthropic), `Framer` wraps each in a frame (eventstream.py). `ping` (the gateway's
keep-alive and Anthropic's own) goes as a message of an event type the AWS SDK does not know, which it skips:
Bedrock never sends one, and a `chunk` the client cannot place could break its message assembly."""

import orjson

from .. import anthropic
from ..anthropic.errors import stream_error
from ..sse import SSEParser, encode
from . import eventstream

EXCEPTIONS = {  # error kind -> the exception type Bedrock's stream names it with
    "rate_limit": "throttlingException",
    "invalid_request": "validationException",
    "request_too_large": "validationException",
    "timeout": "modelTimeoutException",
    "overloaded": "serviceUnavailableException",
}
PING = eventstream.message(
    {":event-type": "ping", ":content-type": "application/json", ":message-type": "event"}, b"{}"
)


def exception_frame(err) -> bytes:
    return eventstream.exception(EXCEPTIONS.get(err.kind, "internalServerException"), err.message)


class Framer:
    """Anthropic SSE bytes in, event-stream frames out (split anywhere)."""

    def __init__(self):
        self._parser = SSEParser()

    def feed(self, sse: bytes) -> bytes:
        return b"".join([self._frame(e.event, e.data) for e in self._parser.feed(sse)]) if sse else b""

    def finish(self) -> bytes:
        return b"".join([self._frame(e.event, e.data) for e in self._parser.finish()])

    @staticmethod
    def _frame(name: str | None, data: bytes) -> bytes:
        if name == "ping":
            return PING
        if name == "error":
            return exception_frame(stream_error(data))
        return eventstream.chunk(data)


class StreamEncoder:
    def __init__(self, req):
        self._inner, self._framer = anthropic.StreamEncoder(req), Framer()

    def encode(self, event) -> bytes:
        return self._framer.feed(self._inner.encode(event))


class Relay:
    """Pass-through from an Anthropic upstream: its events unchanged, each in a frame."""

    def __init__(self, req_body: dict):
        self._inner, self._framer = anthropic.Relay(req_body), Framer()

    usage = property(lambda self: self._inner.usage)
    complete = property(lambda self: self._inner.complete)
    error = property(lambda self: self._inner.error)

    def feed(self, chunk: bytes) -> bytes:
        return self._framer.feed(self._inner.feed(chunk))

    def finish(self) -> bytes:
        return self._framer.feed(self._inner.finish()) + self._framer.finish()


def render_stream_error(err) -> bytes:
    return exception_frame(err)


class StreamDecoder:
    """Frames back to canonical events (the response cache reads a caller's stream with its own format)."""

    def __init__(self, req):
        self._inner, self._frames = anthropic.StreamDecoder(req), eventstream.Decoder()

    def feed(self, chunk: bytes) -> list:
        return self._inner.feed(b"".join(_as_sse(h, p) for h, p in self._frames.feed(chunk)))

    def finish(self) -> list:
        return self._inner.finish()


def _as_sse(headers: dict[str, str], payload: bytes) -> bytes:
    if headers.get(":message-type") == "exception":
        message = orjson.loads(payload).get("message", "")
        return encode("error", orjson.dumps({"type": "error", "error": {"type": "api_error", "message": message}}))
    data = eventstream.event_json(headers, payload)
    return encode(orjson.loads(data).get("type"), data) if data is not None else b""
