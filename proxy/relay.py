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
from contextlib import aclosing
from dataclasses import replace

import httpx
import orjson
from django.conf import settings

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
        return _same_api(answer.response, body, ingress, call)
    return _translated(answer.response, answer.chat, ingress, answer.upstream_format, call)


async def _same_api(response, body, ingress, call):
    relay = ingress.Relay(body)
    outcome, error, deltas = "ok", None, 0
    estimate = lambda: len(orjson.dumps(body)) // 4  # noqa: E731  (only for a stream cut before its usage)
    task = _started(call)
    try:
        async for chunk in http.body_chunks(response):
            call.first_byte()
            deltas += chunk.count(DELTA)
            if time.perf_counter() - call.snapshot_at >= SNAPSHOT_SECONDS:
                call.progress(_so_far(relay.usage, deltas, estimate))
            out = relay.feed(chunk)
            if out:
                yield out
        forwarded_error = relay.error  # an error event the upstream sent itself has already been relayed
        tail = relay.finish()
        if tail:
            yield tail
        error = relay.error
        if error is not None:
            outcome = "interrupted"
            if forwarded_error is None:
                yield _relay_failure(relay, ingress, error)
    except httpx.HTTPError as exc:
        outcome, error = "interrupted", _broken_stream(exc)
        yield _relay_failure(relay, ingress, error)
    except asyncio.CancelledError:
        outcome = "cancelled"
        if not ended_by_shutdown(task):
            raise
        outcome, error = "interrupted", shutdown_error()
        yield _relay_failure(relay, ingress, error)
    except GeneratorExit:
        outcome = "cancelled"
        raise
    finally:
        _streams.pop(task, None)
        await response.aclose()
        call.usage = relay.usage if outcome == "ok" else _so_far(relay.usage, deltas, estimate)
        call.finish(status=200, outcome=outcome, error=error)


async def _translated(response, chat, ingress, upstream_format, call):
    decoder, encoder = upstream_format.StreamDecoder(chat), ingress.StreamEncoder(chat)
    outcome, error, deltas = "ok", None, 0
    estimate = lambda: estimate_input_tokens(chat)  # noqa: E731
    task = _started(call)
    try:
        async with aclosing(_upstream_chunks(response, chat)) as chunks:  # a keep-alive watch ends with us
            async for chunk in chunks:
                if chunk is None:  # the upstream is thinking in silence: keep the client's connection alive
                    yield encoder.encode(Ping())
                    continue
                call.first_byte()
                deltas += chunk.count(DELTA)
                if time.perf_counter() - call.snapshot_at >= SNAPSHOT_SECONDS:
                    call.progress(_so_far(call.usage, deltas, estimate))
                events = decoder.feed(chunk)
                if events:
                    call.meter(events)
                    error = error or call.stream_failure(events)
                    out = b"".join([encoder.encode(event) for event in events])
                    if out:
                        yield out
        events = decoder.finish()
        call.meter(events)
        error = error or call.stream_failure(events)
        out = b"".join([encoder.encode(event) for event in events])
        if out:
            yield out
        if error is not None:
            outcome = "interrupted"
    except httpx.HTTPError as exc:
        outcome, error = "interrupted", _broken_stream(exc)
        out = encoder.encode(StreamError(error))  # the encoder ends its own stream (responses: response.failed)
        if out:
            yield out
    except asyncio.CancelledError:
        outcome = "cancelled"
        if not ended_by_shutdown(task):
            raise
        outcome, error = "interrupted", shutdown_error()
        out = encoder.encode(StreamError(error))
        if out:
            yield out
    except GeneratorExit:
        outcome = "cancelled"
        raise
    finally:
        _streams.pop(task, None)
        await response.aclose()
        if outcome != "ok":
            call.usage = _so_far(call.usage, deltas, estimate)
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


def _relay_failure(relay, ingress, error) -> bytes:
    fail = getattr(relay, "fail", None)  # the Relays of anthropic and openai have none: a stateless error event
    return fail(error) if fail is not None else ingress.render_stream_error(error)


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
