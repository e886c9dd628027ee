"""OpenTelemetry traces through the real server (usage/tracing.py, docs/tracing.md): a gateway started with the
standard OTEL_* variables exports each request over OTLP/HTTP to a real receiver on loopback, which decodes the
protobuf with the official `opentelemetry-proto` messages. The clients are the real SDKs; the fake upstream's
capture shows the traceparent each attempt sent. A gateway without OTEL_* starts no exporter and sends none."""

import gzip
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from websockets.sync.client import connect

from tests.conftest import ROOT, free_port, start_gateway, stop_gateway
from tests.e2e import optimize_world as ow
from tests.e2e import policy_world as pw

SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
STATUS_ERROR = 2


class Collector:
    """An OTLP/HTTP trace receiver: POST /v1/traces, protobuf in, every span kept with its resource's attributes."""

    def __init__(self):
        self.spans: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    raw = gzip.decompress(raw)
                collector.receive(self.path, dict(self.headers.items()), raw)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, path: str, headers: dict, raw: bytes) -> None:
        assert path == "/v1/traces"
        request = ExportTraceServiceRequest.FromString(raw)
        spans = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                spans += [_span(span, resource) for span in scope_spans.spans]
        with self.lock:
            self.headers.append({k.lower(): v for k, v in headers.items()})
            self.spans += spans

    def trace(self, trace_id: str | None = None, request_id: str | None = None, spans: int = 4, timeout=10.0):
        """The spans of one trace (by id, or by the gateway request id on its server span), once its server span
        and at least `spans` spans have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = list(self.spans)
            if request_id is not None:
                trace_id = next((s["trace_id"] for s in found if s["attrs"].get("gatehouse.request_id") == request_id),
                                None)  # fmt: skip
            mine = [s for s in found if trace_id and s["trace_id"] == trace_id]
            if len(mine) >= spans and any(s["kind"] == SERVER for s in mine):
                time.sleep(0.2)  # (a straggler of the same trace in the next batch)
                with self.lock:
                    return [s for s in self.spans if s["trace_id"] == trace_id]
            time.sleep(0.05)
        raise AssertionError(f"no trace {trace_id or request_id}; got {[s['name'] for s in found]}")

    def stop(self):
        self.server.shutdown()


def _attributes(pairs) -> dict:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in pairs}


def _span(span, resource: dict) -> dict:
    return {"name": span.name, "kind": span.kind, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
            "parent": span.parent_span_id.hex(), "attrs": _attributes(span.attributes), "status": span.status.code,
            "start": span.start_time_unix_nano, "end": span.end_time_unix_nano, "resource": resource}  # fmt: skip


@pytest.fixture(scope="module")
def collector():
    running = Collector()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def traced(world, collector, tmp_path_factory):
    """The gateway with tracing on: only the standard OTEL_* variables, read by the SDK."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_SERVICE_NAME": "gatehouse-e2e",
           "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer collector-token",
           "OTEL_BSP_SCHEDULE_DELAY": "50"}  # fmt: skip
    running = start_gateway(env, tmp_dir=tmp_path_factory.mktemp("traced"))
    yield running
    stop_gateway(running)


def _traceparent() -> tuple[str, str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent, f"00-{trace_id}-{parent}-01"


def _by_name(spans: list[dict]) -> dict[str, dict]:
    return {s["name"]: s for s in spans}


def _upstream_traceparents(world, mark: str) -> list[str | None]:
    return [r["headers"].get("traceparent") for r in ow.upstream_calls(world.fake, mark)]


def test_a_request_is_a_trace_continuing_the_clients_traceparent_and_carried_upstream(world, traced, collector):
    import anthropic

    trace_id, parent, header = _traceparent()
    mark, secret = ow.marker(), world.keys["alpha"]
    client = anthropic.Anthropic(base_url=traced.url, api_key=secret, max_retries=0,
                                 default_headers={"traceparent": header})  # fmt: skip
    text = f"SAY: hi {mark}\nUSAGE: in=120 out=7"
    raw = client.messages.with_raw_response.create(
        model="gw-anthropic", max_tokens=50, messages=[{"role": "user", "content": text}]
    )
    assert raw.parse().content[0].text == f"hi {mark}"
    spans = collector.trace(trace_id)
    (server,) = [s for s in spans if s["kind"] == SERVER]
    assert server["parent"] == parent  # the client's span is the parent: its trace goes on
    assert server["name"] == "chat gw-anthropic"
    attrs = server["attrs"]
    assert attrs["gatehouse.request_id"] == raw.headers["request-id"]
    assert (attrs["gatehouse.project"], attrs["gatehouse.ingress"]) == ("alpha", "anthropic")
    assert attrs["gen_ai.operation.name"] == "chat"
    assert (attrs["gen_ai.request.model"], attrs["gen_ai.response.model"]) == ("gw-anthropic", "fake-claude")
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (120, 7)
    assert (attrs["http.response.status_code"], attrs["gatehouse.outcome"]) == (200, "ok")
    assert attrs["gatehouse.attempts"] == 1
    assert attrs["gatehouse.cost_usd"] > 0
    prefix = attrs["gatehouse.key_prefix"]
    assert 4 <= len(prefix) < len(secret) and secret.startswith(prefix)
    assert secret not in json.dumps([s["attrs"] for s in spans])  # the key itself is never exported
    children = _by_name([s for s in spans if s is not server])
    assert set(children) == {"admit", "chat fake-claude", "relay"}
    assert all(s["parent"] == server["span_id"] for s in children.values())
    attempt = children["chat fake-claude"]
    assert attempt["kind"] == CLIENT
    assert (attempt["attrs"]["gatehouse.account"], attempt["attrs"]["gatehouse.provider"]) == ("main", "fake-anthropic")
    assert attempt["attrs"]["http.response.status_code"] == 200 and "gatehouse.retry_wait_ms" not in attempt["attrs"]
    starts = [server, children["admit"], attempt, children["relay"]]
    assert [s["start"] for s in starts] == sorted(s["start"] for s in starts)
    assert children["relay"]["end"] <= server["end"]
    # The upstream call carried the attempt span's traceparent: the provider's spans join the same trace.
    assert _upstream_traceparents(world, mark) == [f"00-{trace_id}-{attempt['span_id']}-01"]
    # What the SDK was told by the standard variables: the collector's header and the service name.
    assert any(h.get("authorization") == "Bearer collector-token" for h in collector.headers)
    assert server["resource"]["service.name"] == "gatehouse-e2e"


def test_a_stream_has_a_relay_span_with_its_first_byte(world, traced, collector):
    import openai

    mark = ow.marker()
    client = openai.OpenAI(base_url=traced.url + "/v1", api_key=world.keys["alpha"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gw-openai", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": f"SAY: streamed words {mark}\nUSAGE: in=30 out=5"}],
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == f"streamed words {mark}"
    spans = _by_name(collector.trace(request_id=raw.headers["x-request-id"]))
    server, relay = spans["chat gw-openai"], spans["relay"]
    assert server["parent"] == ""  # no traceparent from the client: the gateway's span is the root
    assert server["attrs"]["gatehouse.stream"] is True and server["attrs"]["gen_ai.usage.output_tokens"] == 5
    assert server["attrs"]["gen_ai.provider.name"] == "openai"
    assert relay["parent"] == server["span_id"] and relay["attrs"]["gatehouse.outcome"] == "ok"
    assert 0 <= relay["attrs"]["gatehouse.time_to_first_byte_ms"] <= (relay["end"] - relay["start"]) / 1e6
    assert relay["end"] <= server["end"]
    (sent,) = _upstream_traceparents(world, mark)
    assert sent.startswith(f"00-{server['trace_id']}-{spans['chat fake-gpt']['span_id']}-")  # flags: sampled (+random)


def test_a_failover_is_two_attempt_spans_each_with_its_account_and_traceparent(world, traced, collector, committed):
    import openai

    alias, secret, prov = pw.served_route(traced.url, world.fake, ("bad", "sk-wrong-key", 0, 1), ("good", None, 1, 1))
    trace_id, _, header = _traceparent()
    mark = ow.marker()
    client = openai.OpenAI(base_url=traced.url + "/v1", api_key=secret, max_retries=0,
                           default_headers={"traceparent": header})  # fmt: skip
    answer = client.chat.completions.create(model=alias, messages=[{"role": "user", "content": f"SAY: rescued {mark}"}])
    assert answer.choices[0].message.content == f"rescued {mark}"
    spans = collector.trace(trace_id, spans=5)
    (server,) = [s for s in spans if s["kind"] == SERVER]
    first, second = sorted((s for s in spans if s["kind"] == CLIENT), key=lambda s: s["attrs"]["gatehouse.attempt"])
    assert [first["parent"], second["parent"]] == [server["span_id"]] * 2
    assert (first["attrs"]["gatehouse.account"], second["attrs"]["gatehouse.account"]) == ("bad", "good")
    assert first["attrs"]["gatehouse.provider"] == prov.name
    assert first["attrs"]["http.response.status_code"] == 401 and first["attrs"]["error.type"] == "authentication"
    assert first["status"] == STATUS_ERROR and first["attrs"]["gatehouse.retry"] is True
    assert second["attrs"]["http.response.status_code"] == 200 and "error.type" not in second["attrs"]
    assert first["end"] <= second["start"]
    assert server["attrs"]["gatehouse.attempts"] == 2 and server["attrs"]["http.response.status_code"] == 200
    assert _upstream_traceparents(world, mark) == [f"00-{trace_id}-{s['span_id']}-01" for s in (first, second)]


def test_a_retry_after_wait_is_on_the_next_attempt_span(world, traced, collector, committed):
    alias, secret, _ = pw.served_route(traced.url, world.fake)
    response = pw.openai_chat(traced.url, secret, alias, f"FAIL_FIRST: 429 {ow.marker()}\nSAY: waited")
    assert response.status_code == 200
    spans = collector.trace(request_id=response.headers["x-request-id"], spans=5)
    first, second = sorted((s for s in spans if s["kind"] == CLIENT), key=lambda s: s["attrs"]["gatehouse.attempt"])
    assert first["attrs"]["http.response.status_code"] == 429 and first["attrs"]["error.type"] == "rate_limit"
    assert "gatehouse.retry_wait_ms" not in first["attrs"]  # no wait before a first attempt
    assert second["attrs"]["gatehouse.retry_wait_ms"] >= 1000  # the fake's retry-after: 1 s
    assert (second["start"] - first["end"]) / 1e6 >= 990


def test_the_cache_lookup_is_a_span_and_a_hit_makes_no_attempt(world, traced, collector, committed):
    import anthropic

    secret, mark = ow.key_with(response_cache_ttl=60), ow.marker()
    client = anthropic.Anthropic(base_url=traced.url, api_key=secret, max_retries=0)
    ids = []
    for _ in range(2):  # temperature 0: a deterministic request, which the cache keeps
        response = client.messages.with_raw_response.create(
            model="gw-anthropic", max_tokens=50, extra_body={"temperature": 0},
            messages=[{"role": "user", "content": f"SAY: cached {mark}"}],
        )
        ids.append(response.headers["request-id"])
    assert response.headers["x-cache"] == "HIT"
    miss = _by_name(collector.trace(request_id=ids[0], spans=5))
    hit = _by_name(collector.trace(request_id=ids[1], spans=3))
    assert miss["cache lookup"]["attrs"]["gatehouse.cache.hit"] is False and "chat fake-claude" in miss
    assert hit["cache lookup"]["attrs"]["gatehouse.cache.hit"] is True
    assert set(hit) == {"chat gw-anthropic", "admit", "cache lookup"}  # no attempt, no relay
    assert hit["chat gw-anthropic"]["attrs"]["gatehouse.outcome"] == "cache_hit"


def test_each_response_on_the_websocket_is_a_trace_under_the_upgrades_traceparent(world, traced, collector):
    trace_id, parent, header = _traceparent()
    mark = ow.marker()
    url = traced.url.replace("http://", "ws://") + "/v1/responses"
    headers = {"authorization": f"Bearer {world.keys['alpha']}", "traceparent": header}
    with connect(url, additional_headers=headers) as sock:
        for n in range(2):
            sock.send(json.dumps({"type": "response.create", "model": "gw-openai", "input": f"SAY: ws {n} {mark}",
                                  "store": False}))  # fmt: skip
            while json.loads(sock.recv(timeout=10))["type"] != "response.completed":
                pass
    spans = collector.trace(trace_id, spans=8)
    servers = [s for s in spans if s["kind"] == SERVER]
    assert len(servers) == 2 and all(s["parent"] == parent for s in servers)
    assert {s["attrs"]["gatehouse.ingress"] for s in servers} == {"responses"}
    attempts = {s["span_id"] for s in spans if s["kind"] == CLIENT}
    sent = _upstream_traceparents(world, mark)
    assert len(sent) == 2 and {t.split("-")[2] for t in sent} == attempts


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_a_graceful_stop_exports_the_spans_still_queued(world, collector, tmp_path, server):
    """With an export interval longer than the test, the spans reach the collector only through the SIGTERM
    drain's flush: gateway_site/server.py for daphne (where the SDK's atexit hook would also do it), the ASGI
    lifespan for uvicorn (which ends by re-raising SIGTERM, so no atexit hook runs: without the lifespan's flush
    this case fails)."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "600000"}
    running = start_gateway(env, tmp_dir=tmp_path, server=server)
    try:
        trace_id, _, header = _traceparent()
        response = httpx.post(f"{running.url}/v1/messages", json={"model": "gw-anthropic", "max_tokens": 20,
                              "messages": [{"role": "user", "content": "SAY: flushed"}]},
                              headers={"x-api-key": world.keys["alpha"], "traceparent": header}, timeout=30)  # fmt: skip
        assert response.status_code == 200
        time.sleep(0.5)
        assert not [s for s in list(collector.spans) if s["trace_id"] == trace_id]  # still queued in the server
    finally:
        stop_gateway(running)
    assert running.process.returncode is not None
    assert {s["name"] for s in collector.trace(trace_id, timeout=2)} >= {"chat gw-anthropic", "admit", "relay"}


def test_a_request_the_sampler_drops_records_nothing_and_sends_no_traceparent(world, collector, tmp_path):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "50",
           "OTEL_TRACES_SAMPLER": "always_off"}  # fmt: skip
    running = start_gateway(env, tmp_dir=tmp_path)
    try:
        mark = ow.marker()
        response = pw.anthropic_chat(running.url, world.keys["alpha"], "gw-anthropic", f"SAY: dropped {mark}")
        assert response.status_code == 200
        time.sleep(0.5)  # ten export intervals
        request_id = response.headers["request-id"]
        assert not [s for s in list(collector.spans) if s["attrs"].get("gatehouse.request_id") == request_id]
        (call,) = ow.upstream_calls(world.fake, mark)
        assert "traceparent" not in call["headers"]
    finally:
        stop_gateway(running)


def test_without_otel_settings_the_gateway_sends_no_traceparent_upstream(world):
    """The shared world's gateway runs without OTEL_*: a client's traceparent is neither continued nor forwarded."""
    _, _, header = _traceparent()
    mark = ow.marker()
    world.anthropic(default_headers={"traceparent": header}).messages.create(
        model="gw-anthropic", max_tokens=20, messages=[{"role": "user", "content": f"SAY: untraced {mark}"}]
    )
    (call,) = ow.upstream_calls(world.fake, mark)
    assert "traceparent" not in call["headers"]


STARTUP_PROBE = """
import sys, threading
import gateway_site.asgi
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp")))
threads = sorted(t.name for t in threading.enumerate() if t.name.startswith("Otel"))
print(repr((loaded, threads)))
"""


@pytest.mark.parametrize("on", [False, True], ids=["off", "on"])
def test_tracing_off_starts_no_exporter_and_imports_no_sdk(on, tmp_path):
    """The ASGI app as a server loads it: without OTEL_* neither the trace SDK nor the exporter is imported and no
    exporter thread runs (with them, both are there: the probe can see them). (redis-py imports the SDK's metrics
    module by itself when the SDK is installed, for its own opt-in metrics: not ours to assert on.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(DJANGO_SETTINGS_MODULE="gateway_site.settings", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
               GATEWAY_ROLLUP_IN_PROCESS="off", GATEWAY_DATA_DIR=str(tmp_path))  # fmt: skip
    if on:
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "http://127.0.0.1:9/v1/traces"
    out = subprocess.run([sys.executable, "-c", STARTUP_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    loaded, threads = eval(out.stdout.strip().splitlines()[-1])
    if on:
        assert "opentelemetry.sdk.trace" in loaded and threads == ["OtelBatchSpanRecordProcessor"]
    else:
        assert (loaded, threads) == ([], [])


def test_otel_sdk_disabled_wins():
    from usage import tracing

    assert tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.configured({})
