"""An upstream's `chat.completion.chunk` SSE -> canonical stream events (docs/translation.md §5.11 A).

Canonical streams follow Anthropic's grammar, which is stricter than OpenAI's: blocks have contiguous indices,
start and stop once, and never interleave. OpenAI streams may interleave the argument fragments of parallel tool
calls (P-23). So every fragment goes to a pending *segment* (a future block), in order of first appearance, and
only the oldest pending segment streams live. It stops, and the next one starts, once a later segment exists and
the oldest is complete: text and thinking at once, a tool call when its arguments parse as JSON. What is left
flushes in order at the end. A sequential stream (what OpenAI sends) streams live; an interleaved one is
reordered, never torn.

Some servers (shims in front of other providers, local servers) send every tool call with `index: 0` and tell
them apart only by a new `id`, sometimes with text in between: a new id at a known index starts a new call.
"""

from dataclasses import dataclass, field

import orjson

from proxy.canonical import (BlockDelta, BlockStart, BlockStop, ChatRequest, MessageDelta, MessageStart, MessageStop,
                             Ping, StreamError, StreamEvent, Text, Thinking, ToolUse, Usage)  # fmt: skip
from proxy.errors import UpstreamError
from proxy.ids import message_id, sanitize_tool_id
from proxy.tokens import estimate_input_tokens

from .. import thinking_seal
from ..sse import SSEEvent, SSEParser
from .errors import upstream_error
from .mappings import stop_reason_for, usage_from_openai
from .tool_names import tool_name_map

DELTA_KIND = {"text": "text", "thinking": "thinking", "tool": "input_json"}


@dataclass(slots=True)
class _Segment:
    kind: str  # "text" | "thinking" | "tool"
    key: object = None  # tool calls: the upstream's index (or a stand-in when it sent none)
    parts: list[str] = field(default_factory=list)
    sent: int = 0  # how many of `parts` went out
    index: int | None = None  # block index once started
    tool_id: str = ""
    name: str = ""
    checked: int = -1  # len(parts) when the arguments were last found incomplete
    thought: list[str] = field(default_factory=list)  # thinking: everything sent, for its signature


class StreamDecoder:
    def __init__(self, req: ChatRequest):
        self._req = req
        self._names = tool_name_map(req)
        self._parser = SSEParser()
        self._started = False
        self._ended = False
        self._estimate = 0
        self._pending: list[_Segment] = []
        self._tools: dict = {}  # key -> pending tool segment
        self._closed_tools: set = set()
        self._last_tool_key = None
        self._key_by_index: dict = {}  # upstream index -> (key, call id) of the latest call seen there
        self._next_index = 0
        self._tool_blocks = 0
        self._finish_reason: str | None = None
        self._refusal = False
        self._usage: dict | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse_event in self._parser.feed(chunk):
            self._on_sse_event(sse_event, events)
        return events

    def finish(self) -> list[StreamEvent]:
        """Upstream EOF. Without [DONE] or a finish_reason the answer is truncated, and must look it (P-22)."""
        events: list[StreamEvent] = []
        for sse_event in self._parser.finish():
            self._on_sse_event(sse_event, events)
        if not self._ended:
            if self._finish_reason is not None:
                self._end(events)
            else:
                error = UpstreamError("upstream stream ended early", kind="api_error")
                self._fail(error, events)
        return events

    # --- one SSE event ----------------------------------------------------------------------------------------

    def _on_sse_event(self, sse_event: SSEEvent, events: list[StreamEvent]) -> None:
        if self._ended:
            return
        data = sse_event.data.strip()
        if data == b"[DONE]":
            self._end(events)
            return
        try:
            chunk = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            return  # not a chunk; an upstream's stray line must not end the stream
        if not isinstance(chunk, dict):
            return
        error = chunk.get("error")
        if error or sse_event.event == "error":
            error = error if isinstance(error, dict) else {"message": str(error or chunk)}
            self._fail(upstream_error(error), events)
            return
        self._start(events)
        if isinstance(chunk.get("usage"), dict):  # on any chunk, incl. choices: []
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            self._on_delta(delta if isinstance(delta, dict) else {})
            if choices[0].get("finish_reason"):
                self._finish_reason = choices[0]["finish_reason"]  # remembered: usage may still follow
        self._advance(events)

    def _on_delta(self, delta: dict) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:  # P-6: empty deltas are skipped
            self._append_prose("thinking", reasoning)
        if isinstance(delta.get("content"), str) and delta["content"]:
            self._append_prose("text", delta["content"])
        if isinstance(delta.get("refusal"), str) and delta["refusal"]:
            self._refusal = True
            self._append_prose("text", delta["refusal"])
        for position, call in enumerate(delta.get("tool_calls") or []):
            if isinstance(call, dict):
                self._on_tool_fragment(self._tool_key(call, position), call.get("id"), call.get("function") or {})
        if isinstance(delta.get("function_call"), dict):  # legacy: a single unnamed-id call
            self._on_tool_fragment("function_call", None, delta["function_call"])

    def _append_prose(self, kind: str, value: str) -> None:
        segment = self._pending[-1] if self._pending else None
        if segment is None or segment.kind != kind:
            segment = _Segment(kind)
            self._pending.append(segment)
        segment.parts.append(value)

    def _tool_key(self, call: dict, position: int):
        index = call.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            return self._indexed_key(index, call.get("id"))
        if call.get("id"):  # some servers omit index; their ids tell calls apart
            return ("id", call["id"])
        return self._last_tool_key if self._last_tool_key is not None else ("position", position)

    def _indexed_key(self, index: int, call_id):
        """The index alone, unless a new id arrives at an index already used: then a call of its own."""
        known = self._key_by_index.get(index)
        if known is None:
            self._key_by_index[index] = (index, call_id)
            return index
        key, known_id = known
        if isinstance(call_id, str) and call_id and known_id and call_id != known_id:
            key = ("index", index, call_id)
            self._key_by_index[index] = (key, call_id)
        elif isinstance(call_id, str) and call_id and not known_id:
            self._key_by_index[index] = (key, call_id)
        return key

    def _on_tool_fragment(self, key, call_id, function: dict) -> None:
        if key in self._closed_tools:
            return  # its arguments were already complete JSON: nothing valid can follow
        self._last_tool_key = key
        segment = self._tools.get(key)
        if segment is None:
            segment = self._tools[key] = _Segment("tool", key=key)
            self._pending.append(segment)
        if isinstance(call_id, str) and call_id and not segment.tool_id:
            segment.tool_id = call_id
        name = function.get("name")
        if isinstance(name, str) and name and not segment.name:  # later repeats of the name are ignored
            segment.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # a few servers send the object itself
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments:
            segment.parts.append(arguments)

    # --- blocks -----------------------------------------------------------------------------------------------

    def _advance(self, events: list[StreamEvent], final: bool = False) -> None:
        while self._pending:
            head = self._pending[0]
            if head.index is None:
                if head.kind == "tool" and not head.name:
                    if not final:
                        return  # wait for the name
                    self._drop_head()  # never named: no client could call it
                    continue
                self._start_block(head, events)
            self._send(head, events)
            if not final and (len(self._pending) == 1 or not self._complete(head)):
                return
            self._stop_block(head, events)

    def _start_block(self, segment: _Segment, events: list[StreamEvent]) -> None:
        segment.index = self._next_index
        self._next_index += 1
        if segment.kind == "text":
            block = Text(text="")
        elif segment.kind == "thinking":
            block = Thinking(thinking="", signature="")
        else:
            self._tool_blocks += 1
            name = self._names.get(segment.name, segment.name)  # P-15
            block = ToolUse(id=sanitize_tool_id(segment.tool_id), name=name, input={})  # P-16
        events.append(BlockStart(index=segment.index, block=block))

    def _send(self, segment: _Segment, events: list[StreamEvent]) -> None:
        if segment.sent == len(segment.parts):
            return
        value = "".join(segment.parts[segment.sent :])
        events.append(BlockDelta(index=segment.index, kind=DELTA_KIND[segment.kind], value=value))
        if segment.kind == "thinking":
            segment.thought.append(value)
        if segment.kind == "tool":
            segment.sent = len(segment.parts)  # kept: completeness is judged on the whole arguments
        else:
            segment.parts.clear()

    def _complete(self, segment: _Segment) -> bool:
        if segment.kind != "tool":
            return True
        if segment.checked == len(segment.parts):
            return False
        try:
            orjson.loads("".join(segment.parts))
        except orjson.JSONDecodeError:
            segment.checked = len(segment.parts)
            return False
        return True

    def _stop_block(self, segment: _Segment, events: list[StreamEvent]) -> None:
        if segment.kind == "tool" and not segment.parts:
            events.append(BlockDelta(index=segment.index, kind="input_json", value="{}"))  # §5.11 A.4
        if segment.kind == "thinking" and (signature := thinking_seal.mint("".join(segment.thought))):
            events.append(BlockDelta(index=segment.index, kind="signature", value=signature))
        events.append(BlockStop(index=segment.index))
        self._drop_head()

    def _drop_head(self) -> None:
        segment = self._pending.pop(0)
        if segment.kind == "tool":
            del self._tools[segment.key]
            self._closed_tools.add(segment.key)

    # --- start and end ----------------------------------------------------------------------------------------

    def _start(self, events: list[StreamEvent]) -> None:
        if self._started:
            return
        self._started = True
        self._estimate = estimate_input_tokens(self._req)  # P-26: the exact figure comes with MessageDelta
        events.append(MessageStart(id=message_id(), model=self._req.model, usage=Usage(input_tokens=self._estimate)))
        events.append(Ping())

    def _end(self, events: list[StreamEvent]) -> None:
        self._start(events)
        self._advance(events, final=True)
        stop_reason = stop_reason_for(self._finish_reason, self._tool_blocks > 0)  # P-1
        if self._refusal and not self._tool_blocks:
            stop_reason = "refusal"
        usage = usage_from_openai(self._usage) if self._usage else Usage(input_tokens=self._estimate)
        events.append(MessageDelta(stop_reason=stop_reason, stop_sequence=None, usage=usage))
        events.append(MessageStop())
        self._ended = True

    def _fail(self, error: UpstreamError, events: list[StreamEvent]) -> None:
        events.append(StreamError(error=error))
        self._ended = True
