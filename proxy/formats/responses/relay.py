"""Responses caller -> Responses upstream: the body goes through with only `model` swapped, and the stream is
relayed byte for byte (§5.0), watched for usage, the end of the response, and errors.

Only three kinds of event are JSON-decoded: `response.created` (the response id and snapshot a failure needs),
the terminal ones (usage), and `error`. Everything else is counted, never parsed: with R-1's sequence numbers
the count is the next number. A stream that stops before its terminal event is reported by `finish()` in
`.error`; `fail(err)` then gives R-2's ending for it (an `error` event and `response.failed`, numbered on from
the upstream's events, naming the upstream's response), which is what the core should send instead of
`render_stream_error`, whose stateless `error` event knows neither.
"""

import orjson

from proxy.canonical import TargetOptions, Usage
from proxy.errors import UpstreamError

from .. import sse
from ..openai.errors import upstream_error
from .errors import error_fields, response_error
from .response import usage_from_wire

TERMINAL = {"response.completed": True, "response.incomplete": True, "response.failed": False}  # -> complete
WATCHED = frozenset({"response.created", "error", *TERMINAL})


def passthrough_request(body: dict, target: TargetOptions) -> dict:
    """Key order and unknown fields kept (hosted tools included: a native upstream runs them, R-4), except
    `previous_response_id`: the gateway resolved it from its own store (R-8) and the input already holds those
    items; the upstream does not know the id."""
    forwarded = dict(body)
    forwarded["model"] = target.remote_model
    forwarded.pop("previous_response_id", None)
    return forwarded


class Relay:
    def __init__(self, req_body: dict):
        self._parser = sse.SSEParser()
        self._events = 0
        self._snapshot: dict = {}
        self._ended = False  # a terminal event or an error went through: nothing to add
        self.usage = Usage()
        self.complete = False
        self.error: UpstreamError | None = None

    def feed(self, chunk: bytes) -> bytes:
        for event in self._parser.feed(chunk):
            self._observe(event)
        return chunk

    def finish(self) -> bytes:
        for event in self._parser.finish():
            self._observe(event)
        if not self._ended and self.error is None:
            self.error = UpstreamError("upstream stream ended before response.completed", kind="api_error")
        return b""

    def fail(self, err) -> bytes:
        """R-2's ending for a stream that was cut (finish() found it) or whose connection broke; nothing when
        the upstream ended the stream itself."""
        if self._ended:
            return b""
        self._ended, self.error = True, err
        response = {**self._snapshot, "status": "failed", "error": response_error(err)}
        fields = error_fields(err)
        flat = {"code": fields["code"], "message": fields["message"], "param": fields["param"]}
        tail = [("error", {**flat, "error": fields})]
        if self._snapshot:  # response.failed must name the response the stream announced
            tail.append(("response.failed", {"response": response}))
        out = []
        for kind, fields in tail:
            out.append(sse.encode(kind, orjson.dumps({"type": kind, **fields, "sequence_number": self._events})))
            self._events += 1
        return b"".join(out)

    def _observe(self, event: sse.SSEEvent) -> None:
        self._events += 1
        name = event.event or _type_of(event.data)
        if name not in WATCHED:
            return
        payload = sse.data_object(event.data)
        response = payload.get("response") if isinstance(payload.get("response"), dict) else {}
        if name == "response.created":
            self._snapshot = response
        elif name == "error":
            error = payload.get("error") if isinstance(payload.get("error"), dict) else payload
            self.error, self._ended = upstream_error(error), True
        else:
            self.usage = usage_from_wire(response.get("usage"))
            self.complete, self._ended = TERMINAL[name], True
            if name == "response.failed":
                error = response.get("error") if isinstance(response.get("error"), dict) else {}
                self.error = upstream_error({"message": "upstream response failed", **error})


def _type_of(data: bytes) -> str | None:
    """For a stream without `event:` lines: the type, read only when the event could be a watched one."""
    if b'"response.created"' in data or b'"response.completed"' in data or b'"response.incomplete"' in data:
        return sse.data_object(data).get("type")
    if b'"response.failed"' in data or b'"error"' in data:
        return sse.data_object(data).get("type")
    return None
