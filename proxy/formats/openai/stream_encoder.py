"""Canonical stream events -> `chat.completion.chunk` SSE for an OpenAI caller (docs/translation.md §4.2, §5.11 B)."""

import time

import orjson

from proxy.canonical import (BlockDelta, BlockStart, ChatRequest, MessageDelta, MessageStart, MessageStop, Ping,
                             StreamError, StreamEvent, ToolUse, Usage, cumulative_usage)  # fmt: skip
from proxy.ids import completion_id

from .. import sse
from .errors import error_type
from .mappings import finish_reason_for, usage_to_openai

DONE = sse.encode(None, b"[DONE]")
KEEPALIVE = b": ping\n\n"


def render_stream_error(err) -> bytes:
    """The final `data: {"error": …}` chunk of a stream that failed after it started (never followed by [DONE])."""
    error = {"message": err.message, "type": error_type(err), "param": None, "code": None}
    return sse.encode(None, orjson.dumps({"error": error}))


class StreamEncoder:
    def __init__(self, req: ChatRequest):
        self._include_usage = req.include_usage
        self._head = {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time())}
        self._head["model"] = req.model
        self._tool_ordinals: dict[int, int] = {}  # block index -> OpenAI tool-call index (P-23)
        self._usage = Usage()
        self._ended = False

    def encode(self, event: StreamEvent) -> bytes:
        if self._ended:
            return b""
        if isinstance(event, MessageStart):
            self._usage = event.usage
            return self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, BlockStart) and isinstance(event.block, ToolUse):
            ordinal = self._tool_ordinals[event.index] = len(self._tool_ordinals)
            function = {"name": event.block.name, "arguments": ""}
            call = {"index": ordinal, "id": event.block.id, "type": "function", "function": function}
            return self._chunk({"tool_calls": [call]})
        if isinstance(event, BlockDelta):
            return self._delta(event)
        if isinstance(event, MessageDelta):
            self._usage = cumulative_usage(self._usage, event.usage)
            finish_reason = finish_reason_for(event.stop_reason, bool(self._tool_ordinals))  # P-1
            return self._chunk({}, finish_reason)
        if isinstance(event, MessageStop):
            self._ended = True
            if not self._include_usage:
                return DONE
            usage_chunk = {**self._head, "choices": [], "usage": usage_to_openai(self._usage)}
            return sse.encode(None, orjson.dumps(usage_chunk)) + DONE
        if isinstance(event, StreamError):
            self._ended = True  # no [DONE]: the client must see the answer is cut short
            return render_stream_error(event.error)
        if isinstance(event, Ping):
            return KEEPALIVE  # an SSE comment: every client skips it, every proxy sees traffic
        return b""  # text/thinking block starts, block stops: nothing in this format

    def _delta(self, event: BlockDelta) -> bytes:
        if not event.value:  # P-6
            return b""
        if event.kind == "text":
            return self._chunk({"content": event.value})
        if event.kind == "thinking":
            return self._chunk({"reasoning_content": event.value})  # non-standard, read by DeepSeek-aware clients
        if event.kind == "input_json" and event.index in self._tool_ordinals:
            call = {"index": self._tool_ordinals[event.index], "function": {"arguments": event.value}}
            return self._chunk({"tool_calls": [call]})
        return b""  # signatures have no OpenAI field

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = {**self._head, "choices": [choice]}
        if self._include_usage:
            chunk["usage"] = None
        return sse.encode(None, orjson.dumps(chunk))
