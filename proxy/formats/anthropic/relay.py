"""Pass-through streaming (Anthropic caller, Anthropic upstream): the upstream's bytes go to the caller exactly
as received (§5.0), while the relay watches them for usage, the end of the message, and errors.

This runs on every streamed byte, so only the three small events that matter are JSON-decoded: message_start
(input and cache usage), message_delta (cumulative usage) and error. Content deltas are framed, never parsed.
"""

from ...canonical import Usage
from ..sse import SSEParser, data_object
from .errors import stream_error
from .stream import truncated_stream_error
from .wire import usage_from_wire


class Relay:
    """`req_body` is part of the shared surface; Anthropic streams need no per-request edits, so it is unused."""

    def __init__(self, req_body: dict):
        self.usage = Usage()
        self.complete = False
        self.error = None
        self._parser = SSEParser()

    def feed(self, chunk: bytes) -> bytes:
        for event in self._parser.feed(chunk):
            self._observe(event.event, event.data)
        return chunk

    def finish(self) -> bytes:
        for event in self._parser.finish():
            self._observe(event.event, event.data)
        if not self.complete and self.error is None:
            self.error = truncated_stream_error()
        return b""

    def _observe(self, name: str | None, data: bytes) -> None:
        if name == "message_stop":
            self.complete = True
        elif name == "message_start":
            message = data_object(data).get("message")
            self.usage = usage_from_wire(message.get("usage") if isinstance(message, dict) else None)
        elif name == "message_delta":
            self.usage = usage_from_wire(data_object(data).get("usage"), base=self.usage)
        elif name == "error":
            self.error = stream_error(data)
