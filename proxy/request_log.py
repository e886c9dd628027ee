"""Request logs, the request path's side: what a project that keeps logs (accounts.keys.RequestLogSetting) hands
to its ledger row at the end of a request. The storage, retention and readers are usage/request_logs.py.

    core.run      capture(key, ingress, body)      the caller's body (copied only if token reduction will
                                                   edit it), or None: a project without logs pays one check
                  Capture.answered(content)        a complete answer, as the caller got it
                  Capture.tee(chunks)              a stream's bytes, as the caller got them (list appends)
    Call.finish   Capture.document(call, error)    -> LedgerRow.request_log: metadata always; the bodies
                                                   (through log_copy) in full mode; a stream is assembled here,
                                                   after its last byte, into the caller's complete answer

Nothing here runs before the first byte but the capture (a reference, or one copy with reductions on); a
non-streamed answer's log is built as the request is recorded (one orjson.loads of the answer) and spooled with
its row. Failures here lose the log, never the ledger row.
"""

import logging
from contextlib import aclosing

import orjson

from . import redact
from .canonical import StreamError
from .formats import sse
from .optimize import cache

log = logging.getLogger(__name__)


def log_copy(key, request_body: dict, response: dict | None) -> dict:
    """THE one place the stored copy of a request's bodies is made: whatever is kept of a request goes through
    here, and every redaction rule the project has on masks it (proxy/redact.py: a stored copy never keeps a
    secret, whatever the rule's action on the request). Returns {"request", "response"}."""
    rules = redact.rules_for(key)
    return {"request": redact.redact_for_log(rules, request_body), "response": redact.redact_for_log(rules, response)}


def capture(key, ingress, body: dict):
    """A Capture for a project that keeps logs, else None."""
    setting = key.request_log
    if setting is None:
        return None
    if key.optimize is not None and key.optimize.reduces and setting.full:  # reductions edit the body in place
        body = orjson.loads(orjson.dumps(body))
    return Capture(key, setting, ingress, body)


class Capture:
    __slots__ = ("key", "setting", "ingress", "body", "content", "chunks")

    def __init__(self, key, setting, ingress, body: dict):
        self.key, self.setting, self.ingress, self.body = key, setting, ingress, body
        self.content: bytes | None = None
        self.chunks: list[bytes] | None = None

    def answered(self, content: bytes) -> None:
        self.content = content

    async def tee(self, chunks):
        """The stream unchanged; its bytes kept for `document` (complete when Call.finish runs: every chunk
        passes here before the relay ends)."""
        self.chunks = kept = []
        async with aclosing(chunks):
            async for chunk in chunks:
                kept.append(chunk)
                yield chunk

    def document(self, call, error) -> dict | None:
        """LedgerRow.request_log (usage/request_logs.py describes it); None if it could not be made."""
        try:
            response = self._response(error)
            doc = {"full": self.setting.full, "max_bytes": self.setting.max_bytes,
                   "meta": {**request_meta(self.ingress.NAME, self.body), **response_meta(self.ingress.NAME, response)}}
            if self.setting.full:
                doc |= log_copy(self.key, self.body, response)
            return doc
        except Exception:
            log.exception("request log of %s could not be made; the ledger row is kept without it", call.request_id)
            return None

    def _response(self, error) -> dict | None:
        answer = None
        if self.content is not None:
            answer = orjson.loads(self.content)
        elif self.chunks:
            answer = assembled(self.ingress, self.body, self.chunks)
        if answer is None and error is not None:
            answer = orjson.loads(self.ingress.render_error(error)[1])  # the error as the caller got it
        return answer


def assembled(ingress, body: dict, chunks: list[bytes]) -> dict | None:
    """A stream's complete answer in the caller's format, from the bytes the caller got: a Responses stream's
    terminal Response object; others decoded by the format's own StreamDecoder and rendered complete (as the
    response cache stores a stream, proxy/optimize/cache.py)."""
    if getattr(ingress, "replay", None) is not None:
        parser, final = sse.SSEParser(), None
        for chunk in chunks:
            for event in parser.feed(chunk):
                final = cache.terminal_response(event) or final
        return final
    chat = ingress.parse_request(body)
    decoder, events = ingress.StreamDecoder(chat), []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.finish()
    resp = cache.assemble([e for e in events if not isinstance(e, StreamError)])
    return None if resp is None else ingress.render_response(resp, chat)


# --- metadata (kept in both modes) -------------------------------------------------------------------------


def request_meta(api: str, body: dict) -> dict:
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    turns = body.get("input" if api == "responses" else "messages")
    return {
        "stream": body.get("stream") is True,
        "messages": len(turns) if isinstance(turns, list) else int(bool(turns)),
        "tools": [_tool_name(t) for t in tools if isinstance(t, dict)][:200],
    }


def _tool_name(tool: dict) -> str:
    function = tool.get("function")
    return str(tool.get("name") or (function.get("name") if isinstance(function, dict) else "") or tool.get("type"))


def response_meta(api: str, resp) -> dict:
    """Stop reason and the names of the tools the answer calls, for each caller API's answer shape."""
    if not isinstance(resp, dict):
        return {"stop_reason": None, "tool_calls": []}
    if isinstance(resp.get("error"), dict) and resp.get("object") != "response":  # an error body, not an answer
        error = resp["error"] if isinstance(resp["error"], dict) else {}
        return {"stop_reason": "error", "error": str(error.get("type") or error.get("code") or ""), "tool_calls": []}
    if api == "openai":
        choice = (resp.get("choices") or [{}])[0]
        calls = (choice.get("message") or {}).get("tool_calls") or []
        return {"stop_reason": choice.get("finish_reason"), "tool_calls": [c["function"]["name"] for c in calls]}
    if api == "responses":
        details = resp.get("incomplete_details") or {}
        called = ("function_call", "custom_tool_call")
        calls = [o.get("name") for o in resp.get("output") or [] if o.get("type") in called]
        return {"stop_reason": details.get("reason") or resp.get("status"), "tool_calls": calls}
    calls = [b.get("name") for b in resp.get("content") or [] if b.get("type") == "tool_use"]
    return {"stop_reason": resp.get("stop_reason"), "tool_calls": calls}
