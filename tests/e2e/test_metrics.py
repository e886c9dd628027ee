"""/metrics through real servers: the gateway_* series and their labels after real requests (both APIs, a failed
attempt before a failover, a rate-limit refusal, tokens and cost), summed over TWO server processes that share
one PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, README "Metrics")."""

import re
import threading
import time

import httpx
import pytest
from anthropic import Anthropic
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_gateway, stop_gateway
from tests.e2e import policy_world as pw


@pytest.fixture(scope="module")
def pair(world, tmp_path_factory):
    """Two gateway processes sharing one metrics directory, as two workers on one host would."""
    metrics_dir = tmp_path_factory.mktemp("prom")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    servers = [start_gateway(env, tmp_dir=tmp_path_factory.mktemp(f"metrics{i}")) for i in range(2)]
    yield servers
    for server in servers:
        stop_gateway(server)


def _openai(world, server) -> OpenAI:
    return OpenAI(base_url=server.url + "/v1", api_key=world.keys["alpha"], max_retries=0)


def scrape(url: str) -> dict[tuple, float]:
    """{(sample name, frozenset of labels): value} of one /metrics page."""
    response = httpx.get(url + "/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_request_series_summed_over_two_processes(world, pair, committed):
    first, second = pair
    anthropic = Anthropic(base_url=first.url, api_key=world.keys["alpha"], max_retries=0)
    reply = anthropic.messages.create(
        model="gw-anthropic", max_tokens=50, messages=[{"role": "user", "content": "USAGE: in=1000 out=200"}]
    )
    assert reply.usage.input_tokens == 1000
    openai = _openai(world, second)
    chunks = list(openai.chat.completions.create(
        model="gw-openai", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "SAY: streamed"}],
    ))  # fmt: skip
    assert chunks
    failed_over = _openai(world, first).chat.completions.create(
        model="gw-failover", messages=[{"role": "user", "content": "SAY: after failover"}]
    )
    assert failed_over.choices[0].message.content == "after failover"

    for server in pair:  # either process reports the sum of both
        m = scrape(server.url)
        assert value(m, "gateway_requests_total", api="anthropic", model="gw-anthropic", project="alpha",
                     status="200", outcome="ok") == 1  # fmt: skip
        assert value(m, "gateway_requests_total", api="openai", model="gw-openai", project="alpha", status="200") == 1
        assert value(m, "gateway_requests_total", api="openai", model="gw-failover", status="200") == 1
        assert value(m, "gateway_tokens_total", project="alpha", model="gw-anthropic", type="input") == 1000
        assert value(m, "gateway_tokens_total", project="alpha", model="gw-anthropic", type="output") == 200
        # fake-claude: $3 / $15 per Mtok -> 1000 * 3e-6 + 200 * 15e-6
        assert value(m, "gateway_cost_usd_total", project="alpha", model="gw-anthropic") == pytest.approx(0.006)
        # the dead target's refused connection counts once; the request itself succeeded on the next target
        assert value(m, "gateway_upstream_errors_total", provider="dead") == 1
        assert value(m, "gateway_upstream_errors_total", provider="dead", status="502", kind="api_error") == 1
        assert value(m, "gateway_request_latency_seconds_count") == 3
        assert value(m, "gateway_time_to_first_token_seconds_count", api="openai", model="gw-openai") == 1
        assert value(m, "gateway_time_to_first_token_seconds_count", model="gw-anthropic") == 0  # not a stream
        assert value(m, "gateway_stream_duration_seconds_count", model="gw-openai") == 1
        assert value(m, "gateway_active_requests") == 0
    assert httpx.get(second.url + "/admin/login/").status_code == 200
    samples = scrape(first.url)
    _labels_are_bounded(samples)
    # django-prometheus's own series (the admin's requests), summed over the processes alike
    assert value(samples, "django_http_requests_total_by_view_transport_method_total", view="admin:login") == 1
    # the guard stays: a request that came through a proxy is not this host's Prometheus
    assert httpx.get(first.url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403


def test_a_rate_limit_refusal_is_counted(world, pair, committed):
    second = pair[1]
    proj = pw.project()
    secret = pw.key(proj, rpm_limit=1)
    pw.wait_for_config(second.url, secret, "gw-openai")  # /v1/models is not rate limited
    assert pw.openai_chat(second.url, secret, "gw-openai").status_code == 200
    assert pw.openai_chat(second.url, secret, "gw-openai").status_code == 429
    m = scrape(pair[0].url)
    assert value(m, "gateway_rate_limit_hits_total", project=proj.slug, kind="rpm") == 1
    assert value(m, "gateway_requests_total", project=proj.slug, status="429", outcome="rate_limited") == 1
    assert value(m, "gateway_requests_total", project=proj.slug, status="200") == 1


def test_requests_in_flight_on_another_process(world, pair, committed):
    first, second = pair
    done = threading.Event()

    def slow():
        try:
            _openai(world, second).chat.completions.create(
                model="gw-openai", messages=[{"role": "user", "content": "SLOW: 1500\nSAY: slow"}]
            )
        finally:
            done.set()

    threading.Thread(target=slow, daemon=True).start()
    deadline = time.monotonic() + 1.2
    seen = 0.0
    while time.monotonic() < deadline and not seen:
        seen = value(scrape(first.url), "gateway_active_requests", api="openai")
        time.sleep(0.05)
    assert seen == 1  # the gauge lives in the other process's file; this one sums the live ones
    assert done.wait(10)
    assert value(scrape(first.url), "gateway_active_requests", api="openai") == 0


def _labels_are_bounded(samples: dict) -> None:
    """No id-like label: no *_id names, no request ids, no key material, no numbers where names belong."""
    for (name, labels), _ in samples.items():
        if not name.startswith("gateway_"):
            continue
        for label, v in labels:
            assert not label.endswith("id"), (name, label)
            assert not re.match(r"^(req_|gh_|msg_|chatcmpl)", v), (name, label, v)
