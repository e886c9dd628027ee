"""The request core: one chat request from an authenticated key to its answer, with no HTTP in sight.

    run(key, ingress, body) ->
        validate   the fields the gateway itself relies on, on every path (proxy/validate.py)
        hop        refuse a request that already passed through this gateway: 508 (proxy/hop.py)
        [choose]   smart routing may pick another model for this project (proxy/optimize)
        route      the alias -> targets and accounts (proxy/routing.py)
        admit      rate limits, concurrency, budget reservation, account health (proxy/policies)
        [optimize] the response cache may answer here; token reduction may edit `body` (proxy/optimize;
                   a project without any layer pays one `is None` check for both)
        [redact]   secrets and PII in what the client wrote: masked in `body`, or a 400 (proxy/redact.py;
                   one `is None` check when the project has no rule on)
        attempts   select an account, send, classify, back off, fail over (proxy/attempts.py)
        relay      the upstream's answer in the caller's format, complete or streamed (proxy/relay.py)
        settle     real tokens and exact cost against the reservations            } call.finish
        record     one ledger row (and its request log, proxy/request_log.py)     } (proxy/metering.py)

With tracing on (usage/tracing.py) the request is a trace: admit, the cache lookup, each attempt and the relay
are its spans (`with tracing.step(...)` at the step; the trace ends in call.finish).

proxy/api.py calls it for HTTP requests; a batch job calls it from a Celery task (through `run_to_end`, which
also waits for the answer's end and the settlement, so the task's event loop can close). It returns a
Result; a refusal or failure raises a GatewayError whose `headers` the caller's response must carry (limit
headers, request id). Either way the ledger gets exactly one row.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import AsyncIterator

from django.utils import timezone

from usage import tracing

from . import attempts, coding_gateway_headers, formats, hop, ids, optimize, policies, redact, relay, request_log
from . import routing, validate
from .errors import GatewayError, body_limit, json_object, too_large, unexpected
from .metering import Call, outcome_of

log = logging.getLogger(__name__)

SESSION_HEADER = "x-claude-code-session-id"  # Claude Code's session, on the ledger row (README "Claude Code")


@dataclass(slots=True)
class Result:
    """The answer in the caller's format: `content` when complete, `chunks` (SSE bytes) when streamed."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""
    chunks: AsyncIterator[bytes] | None = None


async def run(
    key, ingress_api: str, body: dict | bytes, *, client_headers=None, request_id: str | None = None, batch_id: str = ""
) -> Result:
    """`body` as received (bytes: parsed here, so a malformed one is recorded too) or already parsed (a dict).
    `batch_id` tags the ledger row of a batch item (batches/runner.py)."""
    client_headers = client_headers or {}
    ingress = formats.get(ingress_api)
    call = Call(request_id or ids.request_id(), ingress_api, client_headers.get("user-agent", ""), key=key,
                batch_id=batch_id)
    call.session_id = client_headers.get(SESSION_HEADER) or ""
    call.trace = tracing.begin(call, client_headers)  # None (no spans) unless OTEL_* is set; ended by call.finish
    headers = {ids.request_id_header(ingress.NAME): call.request_id}
    try:
        body_bytes = len(body) if isinstance(body, bytes) else 0
        body = parse_body(body, ingress.NAME) if isinstance(body, bytes) else validate.check(ingress.NAME, body)
        call.stream = body.get("stream") is True
        call.requested_model = str(body.get("model") or "")
        call.log = request_log.capture(key, ingress, body)  # None unless the project keeps request logs
        hop.check(client_headers)  # the gateway is its own upstream: 508 here, not one more hop (proxy/hop.py)
        snapshot = await routing.snapshot()
        model = body.get("model") if key.optimize is None else optimize.choose_model(call, key.optimize, body, body_bytes)
        route = snapshot.resolve(key, model)
        call.alias, call.price_of = route.alias, _prices(snapshot)
        with tracing.step(call, "admit"):
            call.ticket = await policies.admit(call, snapshot, route, body, body_bytes)
        headers.update(ingress.render_limit_headers(call.ticket.limits, time.time()))
        # -- cache lookup and request transforms (proxy/optimize; nothing but this check when a project has none) --
        plan = None if key.optimize is None else await optimize.prepare(call, key.optimize, route, body, ingress, headers)
        if plan is not None and plan.hit is not None:
            return _answer(call, headers, content=plan.hit[0] or b"", chunks=plan.hit[1])
        if key.redact is not None:  # secrets and PII: masked, blocked (400) or counted before they leave (redact.py)
            redact.outbound(call, body, ingress.NAME, headers)
        relay.track(call)  # a shutdown past its grace answers it with an error (gateway_site/server.py)
        answer = await attempts.first_answer(call, route, body, ingress, client_headers, call.ticket.health)
        if call.stream:
            chunks = relay.stream(answer, body, ingress, call)
            chunks = chunks if call.log is None else call.log.tee(chunks)
            chunks = chunks if plan is None else plan.keep_stream(chunks, call, ingress, body)
            return _answer(call, headers, chunks=chunks)
        content = relay.complete(answer, ingress, call)
        if call.log is not None:
            call.log.answered(content)
        call.finish(status=200, outcome="ok")
        if plan is not None:
            plan.keep(content, call)
        return _answer(call, headers, content=content)
    except GatewayError as err:
        _failed(call, ingress, err, headers, with_limits=True)
        raise
    except asyncio.CancelledError:  # the client went away before the response started
        if not relay.ended_by_shutdown():
            call.finish(status=499, outcome="cancelled")
            raise
        raise _failed(call, ingress, relay.shutdown_error(), headers, outcome="interrupted") from None
    except Exception as exc:
        err = unexpected(exc, f"{ingress_api} request {call.request_id}")  # a 500, or a 400 for what it can name
        raise _failed(call, ingress, err, headers) from None  # its kind makes a 500 an upstream_error
    finally:
        relay.untrack()  # a stream registers again while it is relayed


async def run_to_end(key, ingress_api: str, body: dict, **kwargs) -> Result:
    """`run` for a caller with no client connection (a batch job, in its own event loop): the answer is read
    to its end (a stream's SSE bytes become `content`) and the policies are settled before this returns, so the
    loop can end right after."""
    result = await run(key, ingress_api, body, **kwargs)
    if result.chunks is not None:
        result = Result(result.status, result.headers, content=b"".join([chunk async for chunk in result.chunks]))
    await policies.drain()
    return result


def parse_body(raw: bytes, ingress_api: str = "", limit: int = 0) -> dict:
    limit = limit or body_limit()  # a model call: the general limit (a WebSocket frame: its own)
    if len(raw) > limit:
        raise too_large(limit)
    body = json_object(raw)
    return validate.check(ingress_api, body) if ingress_api else body  # the fields the gateway relies on


def _prices(snapshot):
    today = _today()
    return lambda remote_model: snapshot.price(remote_model, today)


def _today() -> date:
    """timezone.localdate(), recomputed at most once a second (it costs ~15 µs: tz conversions, settings reads)."""
    global _day
    now = time.monotonic()
    if now - _day[0] > 1.0:
        _day = (now, timezone.localdate())
    return _day[1]


_day: tuple[float, date] = (-2.0, date.min)


def _answer(call: Call, headers: dict, **body) -> Result:
    coding_gateway_headers.add(call, headers)  # off unless GATEWAY_CODING_GATEWAY_HEADERS: one settings read
    return Result(200, headers, **body)


def _failed(call: Call, ingress, err: GatewayError, headers: dict, *, outcome: str = "", with_limits=False) -> GatewayError:
    """Record a request that ends in an error, with the status its caller gets (e.g. 529 vs 503, 402 vs 429),
    and give the error the response headers gathered so far (request id; limits once admitted)."""
    status = ingress.render_error(err)[0]
    call.finish(status=status, outcome=outcome or outcome_of(err), error=err)
    limits = _limit_headers(call, ingress) if with_limits else {}
    if with_limits:
        coding_gateway_headers.add(call, limits, answered=False)
    err.headers = {**headers, **limits, **err.headers}
    return err


def _limit_headers(call: Call, ingress) -> dict[str, str]:
    if call.ticket is None:
        return {}
    return ingress.render_limit_headers(call.ticket.limits, time.time())
