"""Anthropic SSE (§2.4), both directions: canonical StreamEvents -> exact Anthropic events for Anthropic callers
(StreamEncoder), and an Anthropic upstream's SSE bytes -> canonical StreamEvents (StreamDecoder).

Both keep the grammar Claude Code depends on (P-22): every event has an `event:` line whose name equals the JSON
`type`, blocks keep contiguous indices, a tool_use block forces stop_reason `tool_use` (P-1), and a stream that
stops early ends in an error, never in a clean message_stop.
"""

import orjson

from ...canonical import (BlockDelta, BlockStart, BlockStop, ChatRequest, MessageDelta, MessageStart, MessageStop,
                          Ping, RedactedThinking, StreamError, Text, Thinking, ToolUse, Usage)  # fmt: skip
from ...errors import UpstreamError
from ...ids import sanitize_tool_id
from ..sse import Decoding, SSEParser, encode
from .errors import render_error, stream_error
from .response import anthropic_message_id, is_json_schema
from .upstream_request import JSON_TOOL_NAME
from .wire import stop_reason_from_wire, usage_from_wire, usage_to_wire

DELTA_TYPES = {
    "text": "text_delta",
    "thinking": "thinking_delta",
    "input_json": "input_json_delta",
    "signature": "signature_delta",
}
DELTA_FIELDS = {"text": "text", "thinking": "thinking", "input_json": "partial_json", "signature": "signature"}
DELTA_KINDS = {wire_type: (kind, DELTA_FIELDS[kind]) for kind, wire_type in DELTA_TYPES.items()}


def truncated_stream_error() -> UpstreamError:
    return UpstreamError("upstream stream ended before message_stop", kind="api_error")


class StreamEncoder:
    """Canonical events -> SSE bytes for an Anthropic caller. The model shown is always the caller's."""

    def __init__(self, req: ChatRequest):
        self._model = req.model
        self._tool_used = False

    def encode(self, event) -> bytes:
        match event:
            case MessageStart():
                return _frame("message_start", {"message": self._message(event)})
            case BlockStart():
                self._tool_used = self._tool_used or isinstance(event.block, ToolUse)
                return _frame("content_block_start", {"index": event.index, "content_block": _start_block(event.block)})
            case BlockDelta():
                delta = {"type": DELTA_TYPES[event.kind], DELTA_FIELDS[event.kind]: event.value}
                return _frame("content_block_delta", {"index": event.index, "delta": delta})
            case BlockStop():
                return _frame("content_block_stop", {"index": event.index})
            case MessageDelta():
                stop_reason = "tool_use" if self._tool_used else event.stop_reason  # P-1
                delta = {"stop_reason": stop_reason, "stop_sequence": event.stop_sequence}
                return _frame("message_delta", {"delta": delta, "usage": usage_to_wire(event.usage)})
            case MessageStop():
                return _frame("message_stop", {})
            case Ping():
                return _frame("ping", {})
            case StreamError():
                return render_stream_error(event.error)
        return b""

    def _message(self, event: MessageStart) -> dict:
        return {
            "id": anthropic_message_id(event.id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_wire(event.usage),
        }


def _frame(name: str, fields: dict) -> bytes:
    return encode(name, orjson.dumps({"type": name, **fields}))


def _start_block(block) -> dict:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, Thinking):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if isinstance(block, ToolUse):
        return {"type": "tool_use", "id": sanitize_tool_id(block.id), "name": block.name, "input": block.input or {}}
    if isinstance(block, RedactedThinking):
        return {"type": "redacted_thinking", "data": block.data}
    raise TypeError(f"not a streamable block: {block!r}")


def render_stream_error(err) -> bytes:
    """`event: error` with the same JSON an error response body would carry (P-22)."""
    return encode("error", _single_line(render_error(err)[1]))


def _single_line(body: bytes) -> bytes:
    """An SSE data line cannot hold a newline; a raw upstream error body may be pretty-printed."""
    if b"\n" not in body and b"\r" not in body:
        return body
    try:
        return orjson.dumps(orjson.loads(body))
    except orjson.JSONDecodeError:
        message = " ".join(body.decode("utf-8", "replace").split())
        return orjson.dumps({"type": "error", "error": {"type": "api_error", "message": message}})


class StreamDecoder(Decoding):
    """An Anthropic upstream's SSE -> canonical events, one for one, with three edits: server-tool blocks are
    skipped (and later indices renumbered so they stay contiguous), a `json_response` tool block becomes text
    (see response.py), and a missing message_stop becomes a StreamError."""

    def __init__(self, req: ChatRequest):
        self._parser = SSEParser()
        self._json_schema = is_json_schema(req)
        self._indices: dict[int, int] = {}  # upstream block index -> ours
        self._json_blocks: set[int] = set()  # our indices of json_response blocks, streamed as text
        self._other_tool = False
        self._usage = Usage()
        self._ended = False  # message_stop or error seen: nothing after counts

    _cut = staticmethod(truncated_stream_error)

    def _decode(self, sse_events) -> list:
        events = []
        for sse in sse_events:
            if self._ended:
                break
            event = self._event(sse)
            if event is not None:
                events.append(event)
        return events

    def _event(self, sse):
        try:
            payload = orjson.loads(sse.data)
        except orjson.JSONDecodeError:
            self._ended = True
            return StreamError(UpstreamError("upstream sent a malformed stream event", kind="api_error"))
        if not isinstance(payload, dict):
            return None
        name = sse.event or payload.get("type")
        if name == "error":
            self._ended = True
            return StreamError(stream_error(sse.data))
        handler = self._HANDLERS.get(name)
        return handler(self, payload) if handler else None  # unknown event types are ignored (§2.4)

    def _message_start(self, payload: dict) -> MessageStart:
        message = payload.get("message") or {}
        self._usage = usage_from_wire(message.get("usage"))
        return MessageStart(id=message.get("id") or "", model=message.get("model") or "", usage=self._usage)

    def _block_start(self, payload: dict) -> BlockStart | None:
        block = self._start_block(payload.get("content_block") or {})
        if block is None:
            return None
        index = self._indices[payload.get("index")] = len(self._indices)
        if isinstance(block, ToolUse) and block.name == JSON_TOOL_NAME and self._json_schema:
            self._json_blocks.add(index)
            block = Text("")
        elif isinstance(block, ToolUse):
            self._other_tool = True
        return BlockStart(index, block)

    @staticmethod
    def _start_block(raw: dict):
        kind = raw.get("type")
        if kind == "text":
            return Text(raw.get("text") or "")
        if kind == "thinking":
            return Thinking(raw.get("thinking") or "", signature=raw.get("signature") or "")
        if kind == "redacted_thinking":
            return RedactedThinking(raw.get("data") or "")
        if kind == "tool_use":
            return ToolUse(id=raw.get("id") or "", name=raw.get("name") or "", input={})
        return None  # server-tool blocks and anything newer

    def _block_delta(self, payload: dict) -> BlockDelta | None:
        index = self._indices.get(payload.get("index"))
        delta = payload.get("delta") or {}
        kind, field = DELTA_KINDS.get(delta.get("type"), (None, None))
        if index is None or kind is None:
            return None  # a skipped block, or citations_delta and other deltas we do not carry
        value = delta.get(field) or ""
        if index in self._json_blocks:
            return BlockDelta(index, "text", value) if value else None
        return BlockDelta(index, kind, value)

    def _block_stop(self, payload: dict) -> BlockStop | None:
        index = self._indices.get(payload.get("index"))
        return None if index is None else BlockStop(index)

    def _message_delta(self, payload: dict) -> MessageDelta:
        delta = payload.get("delta") or {}
        self._usage = usage_from_wire(payload.get("usage"), base=self._usage)
        stop_reason = stop_reason_from_wire(delta.get("stop_reason"))
        if stop_reason == "tool_use" and self._json_blocks and not self._other_tool:
            stop_reason = "end_turn"
        return MessageDelta(stop_reason=stop_reason, stop_sequence=delta.get("stop_sequence"), usage=self._usage)

    def _message_stop(self, payload: dict) -> MessageStop:
        self._ended = True
        return MessageStop()

    def _ping(self, payload: dict) -> Ping:
        return Ping()

    _HANDLERS = {
        "message_start": _message_start,
        "content_block_start": _block_start,
        "content_block_delta": _block_delta,
        "content_block_stop": _block_stop,
        "message_delta": _message_delta,
        "message_stop": _message_stop,
        "ping": _ping,
    }
