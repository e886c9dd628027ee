"""Server-sent events framing: bytes in, (event, data) out; (event, data) in, bytes out; `data_object`, the one
lenient reading of an event's JSON data that the relays use; and `Decoding`, the feed/finish of a decoder of an
SSE upstream (Anthropic's, Responses').

The parser is incremental: feed it whatever TCP chunks arrive, split anywhere (mid-line, mid-UTF-8 character,
between \\r and \\n). It works on bytes and only splits at line ends, so a multi-byte character is never cut.
"""

from dataclasses import dataclass

import orjson

from ..canonical import StreamError


@dataclass(slots=True)
class SSEEvent:
    event: str | None  # the `event:` name, None when the server sent only `data:` lines (OpenAI)
    data: bytes  # `data:` lines joined with \n, without the trailing newline


class SSEParser:
    __slots__ = ("_buffer", "_event", "_data")

    def __init__(self):
        self._buffer = b""
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[SSEEvent] = []
        start = 0
        length = len(buffer)
        while start < length:
            newline = buffer.find(b"\n", start)
            carriage = buffer.find(b"\r", start, newline if newline >= 0 else length)
            if carriage >= 0:
                if carriage == length - 1:  # a lone \r at the end may be half of \r\n: wait for more
                    break
                end, step = carriage, 2 if buffer[carriage + 1 : carriage + 2] == b"\n" else 1
            elif newline >= 0:
                end, step = newline, 1
            else:
                break
            self._line(buffer[start:end], events)
            start = end + step
        self._buffer = buffer[start:]
        return events

    def finish(self) -> list[SSEEvent]:
        """End of stream: a final event without its blank line still counts."""
        events: list[SSEEvent] = []
        if self._buffer:
            self._line(self._buffer, events)
            self._buffer = b""
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data or self._event is not None:
                events.append(SSEEvent(self._event, b"\n".join(self._data)))
                self._event, self._data = None, []
            return
        if line[0:1] == b":":  # comment / keep-alive
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")


def encode(event: str | None, data: bytes) -> bytes:
    """One SSE event. `data` must be single-line (compact JSON is)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def data_object(data: bytes) -> dict:
    """An event's data as a JSON object, {} when it is not one: a malformed event must not break a relay (the
    caller still gets the bytes and judges them itself)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class Decoding:
    """feed/finish for a StreamDecoder over SSE: the subclass has `_parser` (an SSEParser), `_decode(events)`, an
    `_ended` flag it sets on its format's last event, and `_cut()`, the error of a stream that stopped before it."""

    def feed(self, chunk: bytes) -> list:
        return self._decode(self._parser.feed(chunk))

    def finish(self) -> list:
        events = self._decode(self._parser.finish())
        if not self._ended:
            self._ended = True
            events.append(StreamError(self._cut()))
        return events
