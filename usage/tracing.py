"""OpenTelemetry traces of model requests: off unless the standard OTEL_* variables say where to send them.

    OTEL_EXPORTER_OTLP_ENDPOINT           turns tracing on (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTLP/HTTP protobuf
    OTEL_SDK_DISABLED=true                off, whatever else is set; so is OTEL_TRACES_EXPORTER=none
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_(TRACES_)HEADERS / _TIMEOUT / _COMPRESSION,
    OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_PROPAGATORS
                                          read by the official SDK itself (docs/tracing.md)

One request is one trace (proxy.core.run begins it, proxy.metering.Call.finish ends it):

    chat <model>          SERVER  the request, continuing the client's W3C `traceparent`
      admit                       policies: limits, budget reservation (proxy/core.py)
      cache lookup                the response cache (proxy/optimize)
      chat <remote model> CLIENT  each upstream attempt (proxy/attempts.py); the upstream call carries its
                                  traceparent (proxy/upstreams/base.py)
      relay                       the answer to the client, from the upstream's headers to the end of the stream

Spans are exported by the SDK's BatchSpanProcessor from its own thread: the request path only records them.
Off, nothing here imports opentelemetry: `begin` returns None and every other function checks `call.trace` (or
the module's `_tracer`) once and returns; so does a request the sampler drops. `setup()` runs once as a server
loads the app (gateway_site/asgi.py) or a Celery task process starts (gateway_site/celery.py), and `shutdown()`
exports what is queued as it drains (gateway_site/server.py, the ASGI lifespan, Celery's process shutdown).

This module reads proxy.metering.Call duck-typed, as usage.metrics does (usage never imports proxy).
"""

import logging
import os
import time
from types import SimpleNamespace

log = logging.getLogger(__name__)

SERVICE_NAME = "gatehouse"  # when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names the service
# Provider kind (accounts.presets.KINDS) -> the GenAI semantic conventions' gen_ai.provider.name
PROVIDER_NAMES = {"anthropic": "anthropic", "openai": "openai", "openai_responses": "openai",
                  "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}  # fmt: skip
_tracer = None  # an opentelemetry Tracer once setup() found tracing configured; None = off
_provider = None
_api = None  # opentelemetry's context, propagate and trace modules, bound by setup() (never imported when off)


def configured(environ=os.environ) -> bool:
    """Is tracing asked for? An OTLP endpoint is set and neither the SDK nor the trace exporter is switched off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def setup() -> bool:
    """Start tracing if it is configured (idempotent): the SDK's provider, the OTLP/HTTP exporter behind a batch
    processor. True when on."""
    global _tracer, _provider, _api
    if _tracer is not None or not configured():
        return _tracer is not None
    from opentelemetry import context, propagate, trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint, headers, timeout: OTEL_* env
    _api = SimpleNamespace(context=context, propagate=propagate, trace=trace)
    _provider, _tracer = provider, provider.get_tracer("gatehouse")
    log.info("tracing on: OTLP/HTTP to %s", os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
             or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))  # fmt: skip
    return True


def shutdown() -> None:
    """Export what is queued and stop the exporter's thread (a server's drain; blocking: run it in a thread).
    A request still running after it keeps its spans working; the SDK drops them instead of exporting."""
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()


# --- the request path --------------------------------------------------------------------------------------


class Trace:
    """One request's spans in flight: the server span, its context (the children's parent), the relay's."""

    __slots__ = ("span", "context", "relay", "relay_started", "provider_name")

    def __init__(self, span, context):
        self.span, self.context = span, context
        self.relay, self.relay_started, self.provider_name = None, 0.0, ""


def begin(call, client_headers) -> Trace | None:
    """The server span of a request just arrived (proxy.core.run), a child of the client's traceparent if any."""
    if _tracer is None:
        return None
    key = call.key
    span = _tracer.start_span(
        f"chat {call.ingress}", context=_api.propagate.extract(client_headers), kind=_api.trace.SpanKind.SERVER,
        attributes={"gen_ai.operation.name": "chat", "gatehouse.request_id": call.request_id,
                    "gatehouse.ingress": call.ingress, "gatehouse.project": key.project_slug if key else "",
                    "gatehouse.key_prefix": key.prefix if key else ""},
    )  # fmt: skip
    if not span.is_recording():  # sampled out (OTEL_TRACES_SAMPLER): the rest of the request costs one check
        return None
    return Trace(span, _api.trace.set_span_in_context(span))


def step(call, name: str):
    """A child span of the request around one step: `with tracing.step(call, "admit"):`."""
    if call.trace is None:
        return OFF
    return _Step(_tracer.start_span(name, context=call.trace.context))


def attempt(call, pick, wait_s: float):
    """An upstream attempt's span (CLIENT), current while it runs so the upstream call carries its traceparent."""
    trace = call.trace
    if trace is None:
        return OFF
    provider = pick.target.provider
    trace.provider_name = PROVIDER_NAMES.get(provider.kind, provider.kind)
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": trace.provider_name,
                  "gatehouse.attempt": call.attempts + 1, "gatehouse.provider": provider.name,
                  "gatehouse.account": pick.account.name}  # fmt: skip
    if wait_s:
        attributes["gatehouse.retry_wait_ms"] = round(wait_s * 1000, 1)
    span = _tracer.start_span("chat", context=trace.context, kind=_api.trace.SpanKind.CLIENT, attributes=attributes)
    return _Step(span, current=True, call=call)


def inject(headers: dict) -> None:
    """Add the current attempt span's `traceparent` (and the other OTEL_PROPAGATORS' headers) to an upstream call."""
    if _tracer is not None:
        _api.propagate.inject(headers)


def relay_started(call) -> None:
    """The answer starts going to the client (proxy/relay.py); its span ends with the request (`finished`)."""
    trace = call.trace
    if trace is not None and trace.relay is None:
        trace.relay = _tracer.start_span("relay", context=trace.context)
        trace.relay_started = time.perf_counter()


def finished(call, status: int, outcome: str, error, cost) -> None:
    """End the request's spans (proxy.metering.Call.finish, once per request) with what the ledger row says."""
    trace = call.trace
    if trace is None:
        return
    if trace.relay is not None:
        _end_relay(call, trace, outcome)
    span, usage = trace.span, call.usage
    if call.requested_model:
        span.update_name(f"chat {call.requested_model}")
    attributes = {
        "gen_ai.request.model": call.requested_model, "gen_ai.response.model": call.remote_model,
        "gen_ai.provider.name": trace.provider_name,
        "gen_ai.usage.input_tokens": usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "http.response.status_code": status, "gatehouse.outcome": outcome, "gatehouse.route": call.alias,
        "gatehouse.attempts": call.attempts,
    }  # fmt: skip
    # Only what is there: every attribute costs CPU twice, recorded here and encoded by the exporter.
    for name, value in (("gen_ai.usage.cache_read.input_tokens", usage.cache_read_tokens),
                        ("gen_ai.usage.cache_creation.input_tokens", usage.cache_write_tokens),
                        ("gatehouse.cost_usd", float(cost or 0)), ("gatehouse.stream", call.stream),
                        ("gatehouse.ttft_ms", call.ttft_ms)):  # fmt: skip
        if value:
            attributes[name] = value
    span.set_attributes(attributes)
    if error is not None:
        _failed(span, error, server=status >= 500)
    span.end()


def _end_relay(call, trace: Trace, outcome: str) -> None:
    relay = trace.relay
    relay.set_attribute("gatehouse.outcome", outcome)
    if call.ttft_ms is not None:  # first byte after the relay began (ttft_ms counts from the request's arrival)
        before = (trace.relay_started - call.started) * 1000
        relay.set_attribute("gatehouse.time_to_first_byte_ms", round(max(0.0, call.ttft_ms - before), 1))
    relay.end()


def _failed(span, error, server: bool = True) -> None:
    """error.type and, for the gateway's or the upstream's failure (not the client's), an ERROR status."""
    span.set_attribute("error.type", getattr(error, "kind", None) or type(error).__name__)
    if server:
        span.set_status(_api.trace.StatusCode.ERROR, str(error)[:200])


class _Off:
    """The step of a request that is not traced: a `with` that does nothing."""

    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def set(self, name: str, value) -> None:
        pass

    def answered(self, result) -> None:
        pass


OFF = _Off()


class _Step:
    """A child span as a context manager: ended on exit, an exception recorded (error.type) as it passes."""

    __slots__ = ("span", "current", "call", "token")

    def __init__(self, span, current: bool = False, call=None):
        self.span, self.current, self.call, self.token = span, current, call, None

    def __enter__(self):
        if self.current:
            self.token = _api.context.attach(_api.trace.set_span_in_context(self.span))
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is not None:
            _failed(self.span, exc, server=not hasattr(exc, "kind") or getattr(exc, "status", 500) >= 500)
        if self.token is not None:
            _api.context.detach(self.token)
        self.span.end()
        return False

    def set(self, name: str, value) -> None:
        self.span.set_attribute(name, value)

    def answered(self, result) -> None:
        """An attempt's outcome (proxy.attempts._attempt's result): an Answer, or (error, verdict)."""
        span, model = self.span, self.call.remote_model
        span.update_name(f"chat {model}")
        if isinstance(result, tuple):
            err, verdict = result
            span.set_attributes({"gen_ai.request.model": model, "http.response.status_code": err.status,
                                 "gatehouse.retry": verdict.retry})  # fmt: skip
            _failed(span, err)
        else:
            status = result.response.status_code
            span.set_attributes({"gen_ai.request.model": model, "http.response.status_code": status})
