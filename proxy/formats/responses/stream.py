"""Canonical stream events -> the Responses SSE grammar, for a Responses caller (R-1, R-2, R-5, R-10).

Every event has an `event:` line named like its `type` and a `sequence_number` counting from 0 (R-1). The
stream opens with `response.created` and `response.in_progress`; the answer arrives as output items, each
announced by `response.output_item.added` and finished by `response.output_item.done`:

    text blocks     one `message` item for a run of them; per block a `content_part` with `output_text` deltas
    thinking        one `reasoning` item per block; its text as summary part 0 (`reasoning_summary_*`), the
                    block sealed into `encrypted_content` in the item's `done` (R-5)
    tool use        a `function_call` item with `function_call_arguments` deltas, or a `custom_tool_call`
                    item for a freeform tool (R-3), whose text input is sent whole when its block ends

Items close lazily: a message stays open while text blocks follow one another, and every `output_item.done`
waits until the next item starts or the message ends, which is when the item the output stopped in can be
marked incomplete (R-10). The stream ends with `response.completed` or `response.incomplete` holding exactly
the output items already sent (so it equals render_response's object for the same answer), or, on a
StreamError, with an `error` event and `response.failed` (R-2); never with a completion after a failure.

Function arguments are forwarded with the whitespace outside strings removed, so the arguments a client
accumulates are the compact JSON that render_response shows.
"""

from dataclasses import dataclass, field

import orjson

from proxy.canonical import (BlockDelta, BlockStart, BlockStop, ChatRequest, MessageDelta, MessageStart, MessageStop,
                             Ping, RedactedThinking, StreamError, Text, Thinking, ToolUse, Usage,
                             cumulative_usage)  # fmt: skip

from .. import sse
from ..openai.mappings import parse_arguments
from . import ids
from .errors import error_fields, response_error
from .response import (
    ITEM_PREFIXES,
    custom_input,
    custom_tools,
    envelope,
    message_item,
    namespaced,
    output_text,
    reasoning_item,
    status_for,
    summary_text,
    tool_item,
)

KEEPALIVE = b": ping\n\n"  # an SSE comment: the SDK and Codex skip it, proxies see traffic
TEXT = "text"  # marks a text block: its deltas go to whichever message item is open


def render_stream_error(err) -> bytes:
    """A failure outside any encoder's stream (nothing about the response is known): an `error` event alone.
    Inside a translated stream, StreamEncoder.encode(StreamError(err)) ends it properly (R-2)."""
    return _frame("error", {**_flat(err), "error": error_fields(err)}, 0)


class _Minifier:
    """Drops JSON whitespace outside strings, across fragment boundaries."""

    __slots__ = ("in_string", "escaped")

    def __init__(self):
        self.in_string = self.escaped = False

    def feed(self, fragment: str) -> str:
        kept = []
        for char in fragment:
            if self.in_string:
                kept.append(char)
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
            elif char not in " \t\r\n":
                kept.append(char)
                self.in_string = char == '"'
        return "".join(kept)


@dataclass(slots=True)
class _Item:
    kind: str  # message | reasoning | function_call | custom_tool_call
    id: str
    index: int  # output_index
    block: object = None  # reasoning: the Thinking / RedactedThinking so far; tools: the ToolUse
    parts: list = field(default_factory=list)  # message: fragments per output_text part; reasoning: [fragments]
    part_open: bool = False
    arguments: list = field(default_factory=list)  # tools: argument fragments as sent (minified)
    minifier: _Minifier = field(default_factory=_Minifier)
    arguments_done: bool = False
    final: dict | None = None  # the item as output_item.done showed it


class StreamEncoder:
    """`final_response` holds the last Response object sent (completed, incomplete or failed), for storage."""

    def __init__(self, req: ChatRequest):
        self._req = req
        self._custom = custom_tools(req)
        self._namespaced = namespaced(req)
        self._seq = 0
        self._out: list[bytes] = []
        self._response_id = ""
        self._created_at = 0
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._blocks: dict[int, object] = {}  # canonical block index -> TEXT or its _Item
        self._usage = Usage()
        self._stop_reason = "end_turn"
        self._started = self._ended = False
        self.final_response: dict | None = None

    def encode(self, event) -> bytes:
        if self._ended:
            return b""
        if isinstance(event, Ping):
            return KEEPALIVE
        if not self._started:
            self._start(event)
        match event:
            case BlockStart():
                self._block_start(event)
            case BlockDelta():
                self._delta(event)
            case BlockStop():
                self._block_stop(event)
            case MessageDelta():
                self._stop_reason = event.stop_reason
                self._usage = cumulative_usage(self._usage, event.usage)
            case MessageStop():
                self._finish()
            case StreamError():
                self._fail(event.error)
        out, self._out = b"".join(self._out), []
        return out

    # --- lifecycle -------------------------------------------------------------------------------------------

    def _emit(self, kind: str, fields: dict) -> None:
        self._out.append(_frame(kind, fields, self._seq))
        self._seq += 1

    def _start(self, event) -> None:
        self._started = True
        self._response_id, self._created_at = ids.new_id(ids.RESPONSE), ids.now()
        if isinstance(event, MessageStart):
            self._usage = event.usage
        response = self._envelope("in_progress", [], usage=None)
        self._emit("response.created", {"response": response})
        self._emit("response.in_progress", {"response": response})

    def _finish(self) -> None:
        status, details = status_for(self._stop_reason)
        self._close(status)
        response = self._envelope(status, [item.final for item in self._items], self._usage, details)
        self._emit("response.incomplete" if status == "incomplete" else "response.completed", {"response": response})
        self._end(response)

    def _fail(self, err) -> None:
        """R-2: what was produced stays visible (the open item as incomplete), but the stream fails."""
        output = [item.final or self._item_json(item, "incomplete", whole=False) for item in self._items]
        response = self._envelope("failed", output, self._usage, error=response_error(err))
        self._emit("error", {**_flat(err), "error": error_fields(err)})
        self._emit("response.failed", {"response": response})
        self._end(response)

    def _end(self, response: dict) -> None:
        self._ended, self.final_response = True, response

    def _envelope(self, status, output, usage, details=None, error=None) -> dict:
        return envelope(
            self._req, self._response_id, self._created_at, status, output,
            usage=usage, incomplete_details=details, error=error,
        )  # fmt: skip

    # --- blocks ----------------------------------------------------------------------------------------------

    def _block_start(self, event: BlockStart) -> None:
        block = event.block
        if isinstance(block, Text):
            if self._open is not None and self._open.kind != "message":
                self._close("completed")
            self._blocks[event.index] = TEXT
            if block.text:
                self._text(block.text)
            return
        self._close("completed")
        if isinstance(block, Thinking):
            item = self._add("reasoning", Thinking("", block.signature))
            if block.thinking:
                self._thinking(item, block.thinking)
        elif isinstance(block, RedactedThinking):
            item = self._add("reasoning", block)
        elif isinstance(block, ToolUse):
            kind = "custom_tool_call" if block.name in self._custom else "function_call"
            item = self._add(kind, ToolUse(block.id, block.name, {}))
            if block.input:
                self._arguments(item, orjson.dumps(block.input).decode())
        else:
            return
        self._blocks[event.index] = item

    def _delta(self, event: BlockDelta) -> None:
        target = self._blocks.get(event.index)
        if target is None or not event.value:  # P-6: empty deltas say nothing
            return
        if target is TEXT:
            if event.kind == "text":
                self._text(event.value)
        elif target.kind == "reasoning" and isinstance(target.block, Thinking):
            if event.kind == "thinking":
                self._thinking(target, event.value)
            elif event.kind == "signature":
                target.block.signature += event.value
        elif target.kind in ("function_call", "custom_tool_call") and event.kind == "input_json":
            self._arguments(target, event.value)

    def _block_stop(self, event: BlockStop) -> None:
        target = self._blocks.pop(event.index, None)
        if target is TEXT:
            if self._open is not None and self._open.kind == "message":
                self._end_part(self._open)
        elif target is not None and target.kind == "reasoning":
            self._end_part(target)
        elif target is not None:
            self._end_arguments(target)

    # --- items -----------------------------------------------------------------------------------------------

    def _add(self, kind: str, block=None) -> _Item:
        item = _Item(kind, ids.new_id(ITEM_PREFIXES[kind]), len(self._items), block)
        self._items.append(item)
        self._open = item
        added = {"output_index": item.index, "item": self._item_json(item, "in_progress")}
        self._emit("response.output_item.added", added)
        return item

    def _close(self, status: str) -> None:
        """Finish the open item: any part or arguments still open, then output_item.done."""
        item, self._open = self._open, None
        if item is None:
            return
        if item.kind in ("message", "reasoning"):
            self._end_part(item)
        else:
            self._end_arguments(item)
        item.final = self._item_json(item, status)
        self._emit("response.output_item.done", {"output_index": item.index, "item": item.final})

    def _item_json(self, item: _Item, status: str, whole: bool = True) -> dict:
        if item.kind == "message":
            return message_item(item.id, ["".join(fragments) for fragments in item.parts], status)
        if item.kind == "reasoning":
            if status == "in_progress":  # nothing to seal yet
                return {"id": item.id, "type": "reasoning", "summary": []}
            return reasoning_item(item.id, self._reasoning_block(item), seal=whole)
        arguments = "".join(item.arguments)
        block = ToolUse(item.block.id, item.block.name, parse_arguments(arguments))
        return tool_item(item.kind, item.id, block, arguments, status, self._namespaced)

    @staticmethod
    def _reasoning_block(item: _Item):
        if isinstance(item.block, Thinking):
            text = "".join(item.parts[0]) if item.parts else ""
            return Thinking(text, signature=item.block.signature)
        return item.block

    def _fields(self, item: _Item, **fields) -> dict:
        return {"item_id": item.id, "output_index": item.index, **fields}

    # --- message text ----------------------------------------------------------------------------------------

    def _text(self, value: str) -> None:
        item = self._open
        if item is None or item.kind != "message":
            self._close("completed")
            item = self._add("message")
        if not item.part_open:
            item.parts.append([])
            item.part_open = True
            part = {"content_index": len(item.parts) - 1, "part": output_text("")}
            self._emit("response.content_part.added", self._fields(item, **part))
        item.parts[-1].append(value)
        delta = {"content_index": len(item.parts) - 1, "delta": value, "logprobs": []}
        self._emit("response.output_text.delta", self._fields(item, **delta))

    def _end_part(self, item: _Item) -> None:
        if not item.part_open:
            return
        item.part_open = False
        text = "".join(item.parts[-1])
        if item.kind == "message":
            index = {"content_index": len(item.parts) - 1}
            self._emit("response.output_text.done", self._fields(item, **index, text=text, logprobs=[]))
            self._emit("response.content_part.done", self._fields(item, **index, part=output_text(text)))
        else:
            self._emit("response.reasoning_summary_text.done", self._fields(item, summary_index=0, text=text))
            part = summary_text(text)
            self._emit("response.reasoning_summary_part.done", self._fields(item, summary_index=0, part=part))

    # --- reasoning -------------------------------------------------------------------------------------------

    def _thinking(self, item: _Item, value: str) -> None:
        if not item.part_open and not item.parts:
            item.parts.append([])
            item.part_open = True
            part = summary_text("")
            self._emit("response.reasoning_summary_part.added", self._fields(item, summary_index=0, part=part))
        if not item.part_open:
            return  # the summary part already ended; a late delta would contradict its done event
        item.parts[0].append(value)
        self._emit("response.reasoning_summary_text.delta", self._fields(item, summary_index=0, delta=value))

    # --- tool calls ------------------------------------------------------------------------------------------

    def _arguments(self, item: _Item, value: str) -> None:
        if item.arguments_done:
            return
        if item.kind == "custom_tool_call":
            item.arguments.append(value)  # JSON around the free text: decoded when the block ends
            return
        if fragment := item.minifier.feed(value):
            item.arguments.append(fragment)
            self._emit("response.function_call_arguments.delta", self._fields(item, delta=fragment))

    def _end_arguments(self, item: _Item) -> None:
        if item.arguments_done:
            return
        item.arguments_done = True
        if item.kind == "custom_tool_call":
            text = custom_input(parse_arguments("".join(item.arguments)))
            item.arguments = [orjson.dumps({"input": text}).decode()] if text else []
            if text:
                self._emit("response.custom_tool_call_input.delta", self._fields(item, delta=text))
            self._emit("response.custom_tool_call_input.done", self._fields(item, input=text))
            return
        if not item.arguments:  # §5.11: a call without argument bytes still has an object
            item.arguments.append("{}")
            self._emit("response.function_call_arguments.delta", self._fields(item, delta="{}"))
        self._emit("response.function_call_arguments.done", self._fields(item, arguments="".join(item.arguments)))


def _frame(kind: str, fields: dict, sequence_number: int) -> bytes:
    return sse.encode(kind, orjson.dumps({"type": kind, **fields, "sequence_number": sequence_number}))


def _flat(err) -> dict:
    """The documented flat fields of an `error` event."""
    fields = error_fields(err)
    return {"code": fields["code"], "message": fields["message"], "param": fields["param"]}
