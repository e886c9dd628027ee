"""One exact UsageRecord per request, whatever happens to it: tokens, Decimal cost from the price in effect,
latency, time to first token, outcome; written off the hot path and not lost on a graceful shutdown."""

import time
from decimal import Decimal

import httpx
import pytest
from tests.conftest import start_gateway, stop_gateway

MTOK = Decimal(1_000_000)


def test_non_streamed_translated_call_records_exact_tokens_and_cost(world, ledger):
    message = world.anthropic().messages.create(
        model="gw-openai",
        max_tokens=100,
        messages=[{"role": "user", "content": "SAY: priced\nUSAGE: in=1000 out=200 cache_read=300"}],
    )
    # OpenAI upstream reports prompt_tokens=1300 with 300 cached: Anthropic's input_tokens excludes them (P-21)
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (1000, 300, 200)
    row = ledger(message._request_id)
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens) == (1000, 200, 300, 0)
    assert row.cost_usd == (1000 * Decimal(2) + 200 * Decimal(8) + 300 * Decimal("0.5")) / MTOK  # fake-gpt, current price
    assert (row.outcome, row.http_status, row.stream) == ("ok", 200, False)
    assert (row.alias, row.provider, row.remote_model, row.ingress_api, row.upstream_api) == (
        "gw-openai", "fake-openai", "fake-gpt", "anthropic", "openai",
    )
    assert row.project.slug == "alpha" and row.api_key.name == "alpha"


def test_streamed_pass_through_call_records_exact_tokens_and_cost(world, ledger):
    with world.anthropic().messages.stream(
        model="gw-anthropic",
        max_tokens=100,
        messages=[{"role": "user", "content": "SAY: streamed\nUSAGE: in=500 out=40 cache_read=100 cache_write=60"}],
    ) as stream:
        stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    row = ledger(request_id)
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens) == (500, 40, 100, 60)
    expected = (500 * Decimal(3) + 40 * Decimal(15) + 100 * Decimal("0.3") + 60 * Decimal("3.75")) / MTOK
    assert row.cost_usd == expected
    assert row.stream and row.outcome == "ok" and row.ttft_ms is not None and row.ttft_ms <= row.latency_ms


def test_streamed_translated_openai_call_records_usage(world, ledger):
    stream = world.openai().chat.completions.create(
        model="gw-anthropic",
        messages=[{"role": "user", "content": "SAY: x\nUSAGE: in=70 out=9 cache_read=30"}],
        stream=True,
    )
    chunks = list(stream)
    row = ledger(stream.response.headers["x-request-id"])
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens) == (70, 9, 30)
    assert all(c.usage is None for c in chunks)  # the client did not ask for usage; the ledger still has it


def test_failed_requests_are_recorded_too(world, ledger):
    response = httpx.post(
        world.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {world.keys['alpha']}"},
        json={"model": "gw-openai", "messages": [{"role": "user", "content": "FAIL: 429"}]},
    )
    assert response.status_code == 429
    row = ledger(response.headers["x-request-id"])
    assert (row.outcome, row.http_status, row.error_type) == ("rate_limited", 429, "rate_limit")


def test_a_client_disconnect_cancels_the_upstream_and_is_recorded(world, ledger):
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST",
            world.url + "/v1/messages",
            headers={"x-api-key": world.keys["alpha"], "anthropic-version": "2023-06-01", "x-fake-chunks": "20"},
            json={
                "model": "gw-openai",
                "max_tokens": 100,
                "stream": True,
                "messages": [{"role": "user", "content": "SLOW_CHUNKS: 300\nUSAGE: in=11 out=20"}],
            },
        ) as response:
            request_id = response.headers["request-id"]
            next(response.iter_bytes())  # the stream has started
    row = ledger(request_id)
    assert row.outcome == "cancelled"
    assert row.latency_ms < 3000  # 20 chunks x 300 ms would take 6 s: the upstream read stopped early


def test_a_client_giving_up_before_the_answer_is_recorded_as_cancelled(world, ledger, committed):
    from usage.models import UsageRecord

    marker = "SLOW: 2000\nSAY: too late " + str(time.time())
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            world.url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {world.keys['alpha']}"},
            json={"model": "gw-openai", "messages": [{"role": "user", "content": marker}]},
            timeout=httpx.Timeout(5, read=0.3),
        )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        row = UsageRecord.objects.filter(outcome="cancelled", stream=False, http_status=499).order_by("-created_at").first()
        if row and row.latency_ms < 1500:
            break
        time.sleep(0.1)
    else:
        pytest.fail("no cancelled record for a non-streamed request the client abandoned")


def test_bad_json_is_a_400_in_the_callers_format_and_recorded(world, ledger):
    response = httpx.post(
        world.url + "/v1/messages",
        headers={"x-api-key": world.keys["alpha"], "anthropic-version": "2023-06-01", "content-type": "application/json"},
        content=b'{"model": "gw-openai", "messages": [',
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert ledger(response.headers["request-id"]).outcome == "client_error"


def test_oversized_body_is_413(world):
    response = httpx.post(
        world.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {world.keys['alpha']}"},
        json={"model": "gw-openai", "messages": [{"role": "user", "content": "x" * 2_100_000}]},
    )
    assert response.status_code == 413  # the test server's GATEWAY_MAX_BODY_BYTES is 2 MB
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_failover_to_the_next_target_when_the_first_is_unreachable(world, ledger):
    completion = world.openai().chat.completions.create(
        model="gw-failover", messages=[{"role": "user", "content": "SAY: survived"}]
    )
    assert completion.choices[0].message.content == "survived"
    assert ledger(completion._request_id).provider == "fake-openai"


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
def test_records_survive_a_graceful_shutdown(world, committed, tmp_path, server_kind):
    from usage.models import UsageRecord

    # A long flush interval: nothing is written until shutdown drains the queue.
    server = start_gateway({"GATEWAY_LEDGER_FLUSH_SECONDS": "30"}, tmp_dir=tmp_path, server=server_kind)
    try:
        before = UsageRecord.objects.count()
        with httpx.Client(timeout=10) as client:
            for _ in range(20):
                response = client.post(
                    server.url + "/v1/chat/completions",
                    headers={"authorization": f"Bearer {world.keys['alpha']}"},
                    json={"model": "gw-openai", "messages": [{"role": "user", "content": "SAY: keep me"}]},
                )
                assert response.status_code == 200
        assert UsageRecord.objects.count() == before  # still queued in the server
    finally:
        stop_gateway(server)  # SIGTERM
    assert UsageRecord.objects.count() == before + 20


def test_ready_is_503_when_the_database_is_unreachable(tmp_path, django_db_setup):
    server = start_gateway({"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"}, tmp_dir=tmp_path)
    try:
        response = httpx.get(server.url + "/ready", timeout=10)
        assert response.status_code == 503 and response.json()["checks"]["database"] is False
        assert httpx.get(server.url + "/health").status_code == 200
    finally:
        stop_gateway(server)


def test_metrics_token_protects_metrics(tmp_path, django_db_setup):
    server = start_gateway({"METRICS_TOKEN": "s3cret-metrics"}, tmp_dir=tmp_path)
    try:
        for headers, status in [({}, 401), ({"authorization": "Bearer wrong"}, 401), ({"authorization": "Bearer s3cret-metrics"}, 200)]:
            assert httpx.get(server.url + "/metrics", headers=headers).status_code == status
    finally:
        stop_gateway(server)
