"""From an upstream's answer to the caller's: a complete body, or a stream of bytes in the caller's format.

Same API on both sides: the upstream's bytes go back unchanged (the format's Relay watches them for usage and
errors; a Relay with a `fail(err)` method ends a failed stream itself, e.g. Responses' `error` + `response.failed`
numbered on from the upstream's events). Otherwise the upstream's format decodes into proxy.canonical and the
caller's format encodes from it (the encoder also ends a stream whose upstream connection broke).
Whatever way a stream ends (done, upstream error, broken connection, client gone), `call.finish` runs once.
"""

import asyncio
from contextlib import aclosing

import httpx
import orjson
from django.conf import settings

from .canonical import Ping, StreamError
from .errors import UpstreamError
from .keepalive import with_keepalive


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
    outcome, error = "ok", None
    try:
        async for chunk in response.aiter_raw():
            call.first_byte()
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
    except (asyncio.CancelledError, GeneratorExit):
        outcome = "cancelled"
        raise
    finally:
        await response.aclose()
        call.usage = relay.usage
        call.finish(status=200, outcome=outcome, error=error)


async def _translated(response, chat, ingress, upstream_format, call):
    decoder, encoder = upstream_format.StreamDecoder(chat), ingress.StreamEncoder(chat)
    outcome, error = "ok", None
    try:
        async with aclosing(_upstream_chunks(response, chat)) as chunks:  # a keep-alive watch ends with us
            async for chunk in chunks:
                if chunk is None:  # the upstream is thinking in silence: keep the client's connection alive
                    yield encoder.encode(Ping())
                    continue
                call.first_byte()
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
    except (asyncio.CancelledError, GeneratorExit):
        outcome = "cancelled"
        raise
    finally:
        await response.aclose()
        call.finish(status=200, outcome=outcome, error=error)


def _relay_failure(relay, ingress, error) -> bytes:
    fail = getattr(relay, "fail", None)  # the Relays of anthropic and openai have none: a stateless error event
    return fail(error) if fail is not None else ingress.render_stream_error(error)


def _upstream_chunks(response, chat):
    """The upstream's bytes; for a request that asks for thinking, with None for every silent ping interval.
    Only thinking goes quiet for long, and the watch costs a task and a queue hand-off per chunk (measured:
    ~0.6 ms of CPU on a 20-chunk stream), so plain streams are read directly."""
    interval = settings.GATEWAY_STREAM_PING_SECONDS
    if interval > 0 and chat.thinking is not None and chat.thinking.type != "disabled":
        return with_keepalive(response.aiter_raw(), interval)
    return response.aiter_raw()


def _broken_stream(exc: Exception) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError("upstream stopped sending (read timeout)", kind="timeout")
    return UpstreamError(f"upstream connection broke mid-stream: {type(exc).__name__}", kind="api_error")
