"""From an upstream's answer to the caller's: a complete body, or a stream of bytes in the caller's format.

Same API on both sides: the upstream's bytes go back unchanged (the format's Relay watches them for usage and
errors; a Relay with a `fail(err)` method ends a failed stream itself, e.g. Responses' `error` + `response.failed`
numbered on from the upstream's events). Otherwise the upstream's format decodes into proxy.canonical and the
caller's format encodes from it (the encoder also ends a stream whose upstream connection broke).
Whatever way a stream ends (done, upstream error, broken connection, client gone), `call.finish` runs once.

A stream that does not end normally is charged for what it carried: the upstream's own usage where it sent
some (Anthropic's message_start), else estimates — the request's size for input, one output token per delta
event relayed (counted with bytes.count on the raw chunks, never parsed). While it runs, that usage is spooled
once a second (Call.progress), so a process killed mid-stream still leaves an `interrupted` row with it.

Graceful shutdown (gateway_site/server.py): `end_streams()` ends every stream still running when the grace
period is over with an error event in the caller's format, by cancelling the task that iterates it.
"""

import asyncio
import time
from dataclasses import replace

import httpx
import orjson
from django.conf import settings

from usage import tracing

from .canonical import Ping, StreamError, Usage
from .errors import GatewayError, UpstreamError
from .keepalive import with_keepalive
from .metering import SNAPSHOT_SECONDS
from .tokens import estimate_input_tokens
from .upstreams import http

DELTA = b'"delta":'  # one per content event in every format's stream (Anthropic, Chat Completions, Responses)
_streams: dict = {}  # the task iterating each stream in flight -> its Call
_ending: set = set()  # tasks cancelled by end_streams (a shutdown), not by a client that went away


def complete(answer, ingress, call) -> bytes:
    """The answer of a request that does not stream (attempts has read its body already)."""
    raw, chat, upstream_format = answer.raw, answer.chat, answer.upstream_format
    tracing.relay_started(call)  # the relay span, ended with the request (usage/tracing.py)
    call.first_byte()
    try:
        upstream_body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("upstream sent a response that is not JSON", kind="api_error", status=502) from None
    if chat is None:  # same API on both sides: the upstream's bytes are the answer
        call.usage = ingress.usage_from_response(upstream_body)
        return raw
    result = upstream_format.parse_response(upstream_body, chat)
    call.usage = result.usage
    return orjson.dumps(ingress.render_response(result, chat))


def stream(answer, body: dict, ingress, call):
    if answer.chat is None:
        side = _SameApi(ingress.Relay(body), ingress)
        estimate = lambda: len(orjson.dumps(body)) // 4  # noqa: E731  (only for a stream cut before its usage)
        return _relayed(answer.response, http.body_chunks(answer.response), side, call, estimate)
    chat = answer.chat
    side = _Translated(answer.upstream_format.StreamDecoder(chat), ingress.StreamEncoder(chat), call)
    estimate = lambda: estimate_input_tokens(chat)  # noqa: E731
    return _relayed(answer.response, _upstream_chunks(answer.response, chat), side, call, estimate)


class _SameApi:
    """The upstream's bytes unchanged, watched by the format's Relay."""

    __slots__ = ("relay", "ingress", "feed")

    def __init__(self, relay, ingress):
        self.relay, self.ingress = relay, ingress
        self.feed = relay.feed  # chunk -> bytes to forward (no frame of our own: it runs per chunk)

    @property
    def usage(self) -> Usage:
        return self.relay.usage

    def end(self) -> tuple[bytes, GatewayError | None]:
        forwarded = self.relay.error  # an error event the upstream sent itself has already been relayed
        tail = self.relay.finish() or b""
        error = self.relay.error
        if error is not None and forwarded is None:
            tail += self.fail(error)
        return tail, error

    def fail(self, error) -> bytes:
        fail = getattr(self.relay, "fail", None)  # the Relays of anthropic and openai have none: a stateless event
        return fail(error) if fail is not None else self.ingress.render_stream_error(error)


class _Translated:
    """The upstream's format decoded into proxy.canonical events, the caller's format encoded from them."""

    __slots__ = ("decoder", "encoder", "call", "error")

    def __init__(self, decoder, encoder, call):
        self.decoder, self.encoder, self.call, self.error = decoder, encoder, call, None

    @property
    def usage(self) -> Usage:
        return self.call.usage  # call.meter follows it through the events

    def feed(self, chunk: bytes | None) -> bytes:
        if chunk is None:  # the upstream is thinking in silence: keep the client's connection alive
            return self.encoder.encode(Ping())
        events = self.decoder.feed(chunk)
        if not events:
            return b""
        self.call.meter(events)  # (as _encode does, inline: this runs per chunk)
        self.error = self.error or self.call.stream_failure(events)
        return b"".join([self.encoder.encode(event) for event in events])

    def end(self) -> tuple[bytes, GatewayError | None]:
        return self._encode(self.decoder.finish()), self.error

    def fail(self, error) -> bytes:
        return self.encoder.encode(StreamError(error))  # the encoder ends its own stream (responses: response.failed)

    def _encode(self, events) -> bytes:
        if not events:
            return b""
        self.call.meter(events)
        self.error = self.error or self.call.stream_failure(events)
        return b"".join([self.encoder.encode(event) for event in events])


async def _relayed(response, chunks, side, call, estimate):
    """The one way a stream runs and ends, whichever `side` (_SameApi, _Translated) makes its bytes."""
    outcome, error, deltas = "ok", None, 0
    task, feed, clock = _started(call), side.feed, time.perf_counter  # (bound once: this loop runs per chunk)
    tracing.relay_started(call)  # ended with the request, by call.finish below
    try:
        async for chunk in chunks:
            if chunk is not None:
                call.first_byte()
                deltas += chunk.count(DELTA)
                if clock() - call.snapshot_at >= SNAPSHOT_SECONDS:
                    call.progress(_so_far(side.usage, deltas, estimate))
            out = feed(chunk)
            if out:
                yield out
        out, error = side.end()
        if out:
            yield out
        if error is not None:
            outcome = "interrupted"
    except (httpx.HTTPError, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError):
            outcome = "cancelled"
            if not ended_by_shutdown(task):
                raise
        outcome, error = "interrupted", _broken_stream(exc) if isinstance(exc, httpx.HTTPError) else shutdown_error()
        out = side.fail(error)
        if out:  # (an empty chunk would end a chunked response early)
            yield out
    except GeneratorExit:
        outcome = "cancelled"
        raise
    finally:
        _streams.pop(task, None)
        await chunks.aclose()  # a keep-alive watch ends with us (try/finally: aclosing costs 0.5 µs more)
        await response.aclose()
        call.usage = side.usage if outcome == "ok" else _so_far(side.usage, deltas, estimate)
        call.finish(status=200, outcome=outcome, error=error)


def _so_far(known: Usage, deltas: int, estimate_input) -> Usage:
    """The usage of a stream so far: the upstream's figures where it sent them, else the estimates."""
    input_tokens = known.input_tokens
    if not (input_tokens or known.cache_read_tokens or known.cache_write_tokens):
        input_tokens = max(1, estimate_input())
    if input_tokens == known.input_tokens and known.output_tokens >= deltas:
        return known
    return replace(known, input_tokens=input_tokens, output_tokens=max(known.output_tokens, deltas))


# --- graceful shutdown ------------------------------------------------------------------------------------


def _started(call):
    task = asyncio.current_task()
    _streams[task] = call
    return task


def track(call) -> None:
    """A request waiting for its upstream (proxy.core): ended by a shutdown like a stream, with an error answer."""
    _started(call)


def untrack() -> None:
    _streams.pop(asyncio.current_task(), None)


def end_streams() -> int:
    """End every request in flight now, each with an error in its caller's format (and its row written)."""
    tasks = list(_streams)
    running = asyncio.get_running_loop()
    for task in tasks:
        _ending.add(task)
        loop = task.get_loop()
        if loop is running:
            task.cancel()
        else:  # a batch runner's loop in another thread (the embedded default)
            loop.call_soon_threadsafe(task.cancel)
    return len(tasks)


def ended_by_shutdown(task=None) -> bool:
    """In an `except CancelledError`: True (and the task goes on) when end_streams cancelled it."""
    task = task or asyncio.current_task()
    if task not in _ending:
        return False
    _ending.discard(task)
    task.uncancel()  # the task goes on: it sends the error and ends the response normally
    return True


def shutdown_error() -> GatewayError:
    return GatewayError("the gateway is restarting and ended this request; retry it", kind="overloaded")


def _upstream_chunks(response, chat):
    """The upstream's bytes; for a request that asks for thinking, with None for every silent ping interval.
    Only thinking goes quiet for long, and the watch costs a task and a queue hand-off per chunk (measured:
    ~0.6 ms of CPU on a 20-chunk stream), so plain streams are read directly."""
    interval = settings.GATEWAY_STREAM_PING_SECONDS
    if interval > 0 and chat.thinking is not None and chat.thinking.type != "disabled":
        return with_keepalive(http.body_chunks(response), interval)
    return http.body_chunks(response)


def _broken_stream(exc: Exception) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError("upstream stopped sending (read timeout)", kind="timeout")
    return UpstreamError(f"upstream connection broke mid-stream: {type(exc).__name__}", kind="api_error")
