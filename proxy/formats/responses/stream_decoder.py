"""A Responses upstream's SSE -> canonical stream events (the reverse of stream.py, for callers of other formats).

Responses streams one output item at a time, so items map onto canonical blocks in order: output_text (and
refusal) deltas -> a text block, reasoning summary deltas -> a thinking block without signature (see
upstream.py), a function_call item -> a tool_use block fed by its argument deltas. Hosted tool items are
skipped. `response.completed` / `response.incomplete` end the message; `response.failed`, an `error` event, or
a stream that stops before either becomes a StreamError (R-2), never a clean end.
"""

import orjson

from proxy.canonical import (BlockDelta, BlockStart, BlockStop, ChatRequest, MessageDelta, MessageStart, MessageStop,
                             StreamError, Text, Thinking, ToolUse, Usage)  # fmt: skip
from proxy.errors import UpstreamError
from proxy.ids import message_id, sanitize_tool_id
from proxy.tokens import estimate_input_tokens

from ..openai.errors import upstream_error
from ..openai.tool_names import tool_name_map
from ..sse import Decoding, SSEParser
from .response import usage_from_wire
from .upstream import stop_reason_for


class StreamDecoder(Decoding):
    def __init__(self, req: ChatRequest):
        self._req = req
        self._names = tool_name_map(req)
        self._parser = SSEParser()
        self._started = self._ended = False
        self._next_index = 0
        self._open: tuple[str, int, str] | None = None  # (kind, block index, item id) of the open block
        self._argument_bytes = False  # the open tool block received argument deltas
        self._summary_parts: dict[str, int] = {}  # reasoning item id -> summary parts seen
        self._tool_blocks = 0
        self._refused = False

    @staticmethod
    def _cut() -> UpstreamError:
        return UpstreamError("upstream stream ended before response.completed", kind="api_error")

    def _decode(self, sse_events) -> list:
        events: list = []
        for sse_event in sse_events:
            if self._ended:
                break
            try:
                payload = orjson.loads(sse_event.data)
            except orjson.JSONDecodeError:
                self._ended = True
                events.append(StreamError(UpstreamError("upstream sent a malformed stream event", kind="api_error")))
                break
            if isinstance(payload, dict):
                self._event(sse_event.event or payload.get("type"), payload, events)
        return events

    def _event(self, kind, payload: dict, events: list) -> None:
        if not self._started:
            self._started = True
            usage = Usage(input_tokens=estimate_input_tokens(self._req))  # P-26, until the real figures arrive
            events.append(MessageStart(message_id(), self._req.model, usage))
        handler = self._HANDLERS.get(kind)
        if handler is not None:
            handler(self, payload, events)

    # --- blocks ----------------------------------------------------------------------------------------------

    def _start(self, kind: str, block, item_id: str, events: list) -> int:
        self._stop(events)
        index, self._next_index = self._next_index, self._next_index + 1
        self._open, self._argument_bytes = (kind, index, item_id), False
        events.append(BlockStart(index, block))
        return index

    def _stop(self, events: list) -> None:
        if self._open is not None:
            kind, index, _ = self._open
            if kind == "tool" and not self._argument_bytes:
                events.append(BlockDelta(index, "input_json", "{}"))  # §5.11: a tool block always has input
            events.append(BlockStop(index))
            self._open = None

    def _text(self, payload: dict, events: list) -> None:
        value = payload.get("delta")
        if not isinstance(value, str) or not value:
            return  # P-6
        if self._open is None or self._open[0] != "text":
            self._start("text", Text(""), payload.get("item_id") or "", events)
        events.append(BlockDelta(self._open[1], "text", value))

    def _refusal(self, payload: dict, events: list) -> None:
        self._refused = True
        self._text(payload, events)

    def _summary(self, payload: dict, events: list) -> None:
        value, item_id = payload.get("delta"), payload.get("item_id") or ""
        if not isinstance(value, str) or not value:
            return
        if self._open is None or (self._open[0], self._open[2]) != ("thinking", item_id):
            self._start("thinking", Thinking("", ""), item_id, events)
            self._summary_parts[item_id] = payload.get("summary_index", 0)
        elif payload.get("summary_index", 0) != self._summary_parts.get(item_id):
            self._summary_parts[item_id] = payload.get("summary_index", 0)
            events.append(BlockDelta(self._open[1], "thinking", "\n\n"))  # parts joined as parse_response does
        events.append(BlockDelta(self._open[1], "thinking", value))

    def _item_added(self, payload: dict, events: list) -> None:
        item = payload.get("item") or {}
        if item.get("type") != "function_call":
            return  # text and reasoning blocks start with their first delta; hosted tool items are skipped
        name = item.get("name") or ""
        call = ToolUse(sanitize_tool_id(item.get("call_id")), self._names.get(name, name), {})
        self._start("tool", call, item.get("id") or "", events)
        self._tool_blocks += 1
        if item.get("arguments"):
            self._arguments({"item_id": item.get("id"), "delta": item["arguments"]}, events)

    def _arguments(self, payload: dict, events: list) -> None:
        value = payload.get("delta")
        if self._open is None or self._open[0] != "tool" or not isinstance(value, str) or not value:
            return
        self._argument_bytes = True
        events.append(BlockDelta(self._open[1], "input_json", value))

    def _item_done(self, payload: dict, events: list) -> None:
        item = payload.get("item") or {}
        if self._open is None or self._open[2] != (item.get("id") or ""):
            return
        if self._open[0] == "tool" and not self._argument_bytes and item.get("arguments"):
            self._arguments({"delta": item["arguments"]}, events)  # a server that sends arguments only here
        self._stop(events)

    # --- the end ---------------------------------------------------------------------------------------------

    def _done(self, payload: dict, events: list) -> None:
        response = payload.get("response") if isinstance(payload.get("response"), dict) else {}
        self._stop(events)
        self._ended = True
        stop_reason = stop_reason_for(response, self._tool_blocks > 0)
        if self._refused and not self._tool_blocks:
            stop_reason = "refusal"
        events.append(MessageDelta(stop_reason, None, usage_from_wire(response.get("usage"))))
        events.append(MessageStop())

    def _failed(self, payload: dict, events: list) -> None:
        response = payload.get("response") if isinstance(payload.get("response"), dict) else {}
        error = response.get("error") if isinstance(response.get("error"), dict) else {}
        self._ended = True
        events.append(StreamError(upstream_error({"message": "upstream response failed", **error})))

    def _error(self, payload: dict, events: list) -> None:
        error = payload.get("error") if isinstance(payload.get("error"), dict) else payload
        self._ended = True
        events.append(StreamError(upstream_error(error)))

    _HANDLERS = {
        "response.output_text.delta": _text,
        "response.refusal.delta": _refusal,
        "response.reasoning_summary_text.delta": _summary,
        "response.output_item.added": _item_added,
        "response.function_call_arguments.delta": _arguments,
        "response.output_item.done": _item_done,
        "response.completed": _done,
        "response.incomplete": _done,
        "response.failed": _failed,
        "error": _error,
    }
