"""The request path, in one straight line:

    authenticate -> read body -> route -> (translate in) -> call upstream -> (translate back) -> record

When the caller and the upstream speak the same API the body is passed through with only the model swapped and
the upstream's bytes come back unchanged (streams included); the ledger still reads the usage out of them.
Otherwise the caller's format parses into proxy.canonical and the upstream's format renders from it, and back.
Failover to the next account or target happens only before the first byte reaches the client.
"""

import asyncio
import logging
from contextlib import aclosing

import httpx
import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from accounts import keys

from . import formats, ids, routing, upstreams
from .canonical import Ping, TargetOptions
from .errors import GatewayError, InvalidRequest, RequestTooLarge, UpstreamError
from .keepalive import with_keepalive
from .metering import Call, outcome_of
from .upstreams import http

log = logging.getLogger(__name__)

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
REQUEST_ID_HEADER = {"anthropic": "request-id", "openai": "x-request-id"}


async def handle_chat(request, ingress_api: str) -> HttpResponse:
    ingress = formats.get(ingress_api)
    call = Call(ids.request_id(), ingress_api, request.headers.get("user-agent", ""))
    try:
        call.key = await keys.key_authenticate(keys.credential_from_headers(request.headers))
        body = read_json_body(request)
        call.stream = body.get("stream") is True
        snapshot = await routing.snapshot()
        route = snapshot.resolve(call.key, body.get("model"))
        call.alias = route.alias
        return await _call_upstream(request, body, snapshot, route, ingress, call)
    except GatewayError as err:
        call.record(status=err.status, outcome=outcome_of(err), error=err)
        return error_response(ingress, err, call.request_id)
    except asyncio.CancelledError:  # the client went away before the response started
        call.record(status=499, outcome="cancelled")
        raise
    except Exception:
        log.exception("unexpected error in %s request %s", ingress_api, call.request_id)
        err = GatewayError("internal gateway error", kind="api_error")
        call.record(status=500, outcome="upstream_error", error=err)
        return error_response(ingress, err, call.request_id)


async def _call_upstream(request, body: dict, snapshot, route: routing.Route, ingress, call: Call) -> HttpResponse:
    parsed = None  # the canonical request, parsed once if some target needs a translation
    last_error: GatewayError | None = None
    for target, account in routing.attempt_order(route):
        upstream = upstreams.get(target.provider.kind)
        upstream_format = formats.get(upstream.api)
        options = target_options(route, target, body.get("model"))
        if upstream.api == ingress.NAME:
            chat = None  # same API: pass-through, both ways
            payload = ingress.passthrough_request(body, options)
        else:
            chat = parsed = parsed or ingress.parse_request(body)
            payload = upstream_format.render_request(chat, options)
        call.provider, call.account, call.upstream_api = target.provider.name, account.name, upstream.api
        call.remote_model = options.remote_model
        call.price = snapshot.price(options.remote_model, timezone.localdate())
        try:
            response = await _send(upstream, target, account, request.headers, payload)
        except UpstreamError as err:
            last_error = err
            continue
        if response.status_code >= 400:
            error_body = await response.aread()
            await response.aclose()
            last_error = upstream_format.parse_error(response.status_code, error_body, dict(response.headers))
            if last_error.retryable:
                continue
            raise last_error
        if call.stream:
            return _stream_response(response, body, chat, ingress, upstream_format, call)
        return await _complete_response(response, chat, ingress, upstream_format, call)
    raise last_error or UpstreamError("no upstream account is available for this model", kind="overloaded")


def target_options(route: routing.Route, target: routing.Target, requested_model) -> TargetOptions:
    return TargetOptions(
        remote_model=requested_model if target.remote_model == "*" else target.remote_model,
        default_max_tokens=route.default_max_tokens or settings.GATEWAY_DEFAULT_MAX_TOKENS,
        max_output_tokens=route.max_output_tokens,
    )


async def _send(upstream, target, account, client_headers, payload: dict) -> httpx.Response:
    provider = target.provider
    client = http.client()
    upstream_request = client.build_request(
        "POST",
        upstream.url(provider, "chat"),
        content=orjson.dumps(payload),
        headers=upstream.headers(provider, account, client_headers),
        timeout=http.timeout(provider.connect_timeout, provider.read_timeout),
    )
    try:
        return await client.send(upstream_request, stream=True)
    except httpx.TimeoutException:
        raise UpstreamError(f"upstream {provider.name} timed out", kind="timeout", retryable=True) from None
    except httpx.HTTPError as exc:
        raise UpstreamError(
            f"could not reach upstream {provider.name}: {type(exc).__name__}", kind="api_error", status=502, retryable=True
        ) from None


async def _complete_response(response, chat, ingress, upstream_format, call: Call) -> HttpResponse:
    try:
        raw = await response.aread()
    except httpx.HTTPError:
        raise UpstreamError("upstream closed the connection mid-response", kind="api_error", status=502) from None
    finally:
        await response.aclose()
    call.first_byte()
    try:
        upstream_body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("upstream sent a response that is not JSON", kind="api_error", status=502) from None
    if chat is None:  # same API on both sides: the upstream's bytes are the answer
        call.usage = ingress.usage_from_response(upstream_body)
        content = raw
    else:
        result = upstream_format.parse_response(upstream_body, chat)
        call.usage = result.usage
        content = orjson.dumps(ingress.render_response(result, chat))
    call.record(status=200, outcome="ok")
    return HttpResponse(
        content, content_type="application/json", headers={REQUEST_ID_HEADER[call.ingress]: call.request_id}
    )


def _stream_response(response, body, chat, ingress, upstream_format, call: Call) -> StreamingHttpResponse:
    if chat is None:
        chunks = _relay_same_api(response, body, ingress, call)
    else:
        chunks = _relay_translated(response, chat, ingress, upstream_format, call)
    return StreamingHttpResponse(
        chunks,
        content_type="text/event-stream; charset=utf-8",
        headers={**STREAM_HEADERS, REQUEST_ID_HEADER[call.ingress]: call.request_id},
    )


async def _relay_same_api(response, body, ingress, call: Call):
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
                yield ingress.render_stream_error(error)
    except httpx.HTTPError as exc:
        outcome, error = "interrupted", _broken_stream(exc)
        yield ingress.render_stream_error(error)
    except (asyncio.CancelledError, GeneratorExit):
        outcome = "cancelled"
        raise
    finally:
        await response.aclose()
        call.usage = relay.usage
        call.record(status=200, outcome=outcome, error=error)


async def _relay_translated(response, chat, ingress, upstream_format, call: Call):
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
        yield ingress.render_stream_error(error)
    except (asyncio.CancelledError, GeneratorExit):
        outcome = "cancelled"
        raise
    finally:
        await response.aclose()
        call.record(status=200, outcome=outcome, error=error)


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


def read_json_body(request) -> dict:
    length = request.META.get("CONTENT_LENGTH")
    if length and length.isdigit() and int(length) > settings.GATEWAY_MAX_BODY_BYTES:
        raise RequestTooLarge(f"request body exceeds {settings.GATEWAY_MAX_BODY_BYTES} bytes")
    raw = request.body
    if len(raw) > settings.GATEWAY_MAX_BODY_BYTES:
        raise RequestTooLarge(f"request body exceeds {settings.GATEWAY_MAX_BODY_BYTES} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("messages: Field required (a list of messages)", param="messages")
    return body


def error_response(fmt, err: GatewayError, request_id: str) -> HttpResponse:
    status, content, headers = fmt.render_error(err)
    response = HttpResponse(content, status=status, content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    response[REQUEST_ID_HEADER[fmt.NAME]] = request_id
    return response
