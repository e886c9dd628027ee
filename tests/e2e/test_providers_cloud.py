"""Claude on AWS Bedrock and on Google Vertex AI as upstreams, end to end: the official SDKs against the real
gateway, routes to the fake's Bedrock endpoints (SigV4 checked by recomputing the signature, event-stream binary
framing) and Vertex endpoints (service-account tokens from its token endpoint, 401 on an expired token)."""

import time
import uuid
from decimal import Decimal

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.fakes.upstream.wire_anthropic import count_tokens
from tests.fakes.upstream.wire_bedrock import KEYS

from .conftest import FAKE_KEY

MTOK = Decimal(1_000_000)
BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"
PRICE = {"input_per_mtok": Decimal("3.3"), "output_per_mtok": Decimal("16.5"), "cache_read_per_mtok": Decimal("0.33"),
         "cache_write_per_mtok": Decimal("4.125")}  # fmt: skip
ACCESS_KEY_ID = next(iter(KEYS))
SIGV4 = orjson.dumps({"access_key_id": ACCESS_KEY_ID, "secret_access_key": KEYS[ACCESS_KEY_ID], "region": "us-east-1"}).decode()
TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture(scope="module")
def cloud(world, django_db_blocker):
    """Routes of this module, each named by its purpose (a fresh tag keeps them apart from other modules')."""
    with django_db_blocker.unblock():
        return _build(world)


def _build(world) -> dict:
    from accounts.models import ModelRoute, Provider, ProviderAccount, RouteTarget
    from usage.models import ModelPrice

    tag = uuid.uuid4().hex[:6]
    service_account = httpx.get(world.fake.url + "/_fake/vertex/service_account").text

    def provider(name, kind, credential, base_url=world.fake.url):
        row = Provider.objects.create(name=f"{name}-{tag}", kind=kind, preset=kind if kind != "anthropic" else "",
                                      base_url=base_url, read_timeout=20, connect_timeout=2)
        account = ProviderAccount(provider=row, name="main")
        account.set_credential(credential)
        account.save()
        return row, account

    bedrock, bedrock_account = provider("bedrock", "bedrock", SIGV4)
    bedrock_key, _ = provider("bedrock-key", "bedrock", FAKE_KEY)  # a Bedrock API key (Bearer)
    forged, forged_account = provider("bedrock-forged", "bedrock", f"{ACCESS_KEY_ID}:not-the-secret")
    vertex, vertex_account = provider("vertex", "vertex", service_account)
    vertex_pinned, _ = provider("vertex-pinned", "vertex", service_account,
                                world.fake.url + "/v1/projects/pinned-project/locations/europe-west1")
    refused, _ = provider("refusing-anthropic", "anthropic", "sk-wrong-key")

    def route(purpose, *targets, **extra):
        row = ModelRoute.objects.create(alias=f"{purpose}-{tag}", default_max_tokens=256, **extra)
        for priority, (prov, model) in enumerate(targets):
            RouteTarget.objects.create(route=row, provider=prov, remote_model=model, priority=priority)
        return row.alias

    routes = {
        "bedrock": route("bedrock", (bedrock, BEDROCK_MODEL)),
        "bedrock-key": route("bedrock-key", (bedrock_key, BEDROCK_MODEL)),
        "bedrock-once": route("bedrock-once", (bedrock, BEDROCK_MODEL), retry_max_attempts=1),
        "forged": route("forged", (forged, BEDROCK_MODEL), retry_max_attempts=1),
        "vertex": route("vertex", (vertex, VERTEX_MODEL)),
        "vertex-pinned": route("vertex-pinned", (vertex_pinned, VERTEX_MODEL)),
        "to-bedrock": route("to-bedrock", (refused, "claude-sonnet-4-5"), (bedrock, BEDROCK_MODEL)),
        "to-vertex": route("to-vertex", (refused, "claude-sonnet-4-5"), (vertex, VERTEX_MODEL)),
    }
    for model in (BEDROCK_MODEL, VERTEX_MODEL):
        ModelPrice.objects.get_or_create(model=model, defaults=PRICE)
    time.sleep(0.6)  # GATEWAY_CACHE_TTL of the test server
    return {"routes": routes, "bedrock_account": bedrock_account, "forged_account": forged_account,
            "vertex_account": vertex_account}


def upstream_calls(world, fragment: str) -> list[dict]:
    return [r for r in world.fake.requests if fragment in r["path"]]


def cost(inp, out, cache_read=0, cache_write=0) -> Decimal:
    p = PRICE
    return (inp * p["input_per_mtok"] + out * p["output_per_mtok"] + cache_read * p["cache_read_per_mtok"]
            + cache_write * p["cache_write_per_mtok"]) / MTOK


# --- Bedrock ---------------------------------------------------------------------------------------------------


def test_bedrock_answers_a_signed_invoke_with_caching_and_the_cost_of_its_price(world, cloud, ledger):
    message = world.anthropic().messages.create(
        model=cloud["routes"]["bedrock"], max_tokens=100,
        system=[{"type": "text", "text": "A long shared prefix.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "SAY: from bedrock\nUSAGE: in=1000 out=200 cache_read=300 cache_write=40"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    assert message.content[0].text == "from bedrock"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (1000, 200)
    sent = upstream_calls(world, "/model/")[-1]
    assert sent["path"] == f"/model/{BEDROCK_MODEL}/invoke"
    assert sent["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
    assert "/us-east-1/bedrock/aws4_request" in sent["headers"]["authorization"]
    body = sent["body"]
    assert body["anthropic_version"] == "bedrock-2023-05-31" and "model" not in body and "stream" not in body
    assert body["anthropic_beta"] == ["context-1m-2025-08-07"]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}  # prompt caching passes through
    row = ledger(message._request_id)
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens) == (1000, 200, 300, 40)
    assert row.cost_usd == cost(1000, 200, 300, 40)
    assert row.provider.startswith("bedrock-") and (row.remote_model, row.upstream_api) == (BEDROCK_MODEL, "anthropic")


def test_bedrock_streams_thinking_and_tools_from_its_event_stream(world, cloud, ledger):
    with world.anthropic().messages.stream(
        model=cloud["routes"]["bedrock"], max_tokens=2048, tools=TOOLS,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": 'THINK: the user wants weather\nUSE_TOOL: get_weather {"city": "Oslo"}\n'
                                              "USAGE: in=700 out=50"}],
    ) as stream:
        message = stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    thinking, tool = message.content
    assert thinking.type == "thinking" and thinking.thinking == "the user wants weather" and thinking.signature
    assert (tool.type, tool.name, tool.input) == ("tool_use", "get_weather", {"city": "Oslo"})
    assert message.stop_reason == "tool_use"
    assert upstream_calls(world, "/model/")[-1]["path"] == f"/model/{BEDROCK_MODEL}/invoke-with-response-stream"
    row = ledger(request_id)
    assert (row.input_tokens, row.output_tokens, row.stream, row.outcome) == (700, 50, True, "ok")
    assert row.cost_usd == cost(700, 50)


def test_bedrock_through_the_openai_sdk_translated(world, cloud):
    client = world.openai()
    answer = client.chat.completions.create(model=cloud["routes"]["bedrock"],
                                            messages=[{"role": "user", "content": "SAY: translated"}])
    assert answer.choices[0].message.content == "translated"
    chunks = list(client.chat.completions.create(model=cloud["routes"]["bedrock"], stream=True,
                                                 messages=[{"role": "user", "content": "SAY: streamed too"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed too"


def test_a_bedrock_api_key_is_sent_as_a_bearer_token(world, cloud):
    message = world.anthropic().messages.create(model=cloud["routes"]["bedrock-key"], max_tokens=50,
                                                messages=[{"role": "user", "content": "SAY: keyed"}])
    assert message.content[0].text == "keyed"
    assert upstream_calls(world, "/model/")[-1]["headers"]["authorization"] == f"Bearer {FAKE_KEY}"


def test_bedrock_throttling_is_a_429_in_each_callers_format(world, cloud):
    alias = cloud["routes"]["bedrock-once"]
    with pytest.raises(anthropic.RateLimitError) as caught:
        world.anthropic().messages.create(model=alias, max_tokens=50,
                                          messages=[{"role": "user", "content": "FAIL: 429"}])
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert "Too many requests" in caught.value.body["error"]["message"]
    with pytest.raises(openai.RateLimitError):
        world.openai().chat.completions.create(model=alias, messages=[{"role": "user", "content": "FAIL: 429"}])


def test_a_bedrock_stream_broken_by_an_exception_event_ends_in_an_error_event(world, cloud):
    with pytest.raises(anthropic.APIStatusError) as caught:
        with world.anthropic().messages.stream(model=cloud["routes"]["bedrock-once"], max_tokens=50,
                                               messages=[{"role": "user", "content": "FAIL: midstream"}]) as stream:
            stream.get_final_message()
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert "interrupted" in caught.value.body["error"]["message"]


def test_a_wrong_secret_is_refused_by_the_signature_check_and_never_reaches_the_client_as_its_own(world, cloud):
    with pytest.raises(anthropic.APIStatusError) as caught:
        world.anthropic().messages.create(model=cloud["routes"]["forged"], max_tokens=50,
                                          messages=[{"role": "user", "content": "SAY: no"}])
    assert caught.value.status_code == 502 and "refused the gateway's credential" in caught.value.message


def test_bedrock_counts_tokens_with_its_count_tokens_api(world, cloud):
    messages = [{"role": "user", "content": "x" * 400}]
    counted = world.anthropic().messages.count_tokens(model=cloud["routes"]["bedrock"], messages=messages)
    assert counted.input_tokens == count_tokens({"messages": messages}) == 101  # the fake's count, not an estimate
    sent = upstream_calls(world, "/count-tokens")[-1]
    assert sent["path"] == f"/model/{BEDROCK_MODEL}/count-tokens"
    assert orjson.loads(sent["body"]["input"]["invokeModel"]["body"])["anthropic_version"] == "bedrock-2023-05-31"


def test_failover_from_a_refusing_anthropic_account_to_bedrock(world, cloud, ledger):
    message = world.anthropic().messages.create(model=cloud["routes"]["to-bedrock"], max_tokens=50,
                                                messages=[{"role": "user", "content": "SAY: rescued"}])
    assert message.content[0].text == "rescued"
    row = ledger(message._request_id)
    assert row.provider.startswith("bedrock-") and row.remote_model == BEDROCK_MODEL and row.attempts == 2


def test_test_connection_signs_a_one_token_bedrock_request(cloud, committed):
    from proxy import checks

    assert checks.account_check(cloud["bedrock_account"]).ok
    refused = checks.account_check(cloud["forged_account"])
    assert not refused.ok and "HTTP 403" in refused.detail and "signature" in refused.detail


# --- Vertex ----------------------------------------------------------------------------------------------------


def test_vertex_answers_with_a_service_account_token_and_records_usage(world, cloud, ledger):
    message = world.anthropic().messages.create(
        model=cloud["routes"]["vertex"], max_tokens=100, tools=TOOLS,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": 'USE_TOOL: get_weather {"city": "Rome"}\nUSAGE: in=900 out=30 cache_write=100',
             "cache_control": {"type": "ephemeral"}}]}],
    )
    assert message.content[0].input == {"city": "Rome"}
    sent = upstream_calls(world, "/publishers/anthropic/models/")[-1]
    assert sent["path"] == f"/v1/projects/fake-project/locations/global/publishers/anthropic/models/{VERTEX_MODEL}:rawPredict"
    assert sent["headers"]["authorization"].startswith("Bearer ya29.fake-")
    assert sent["body"]["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent["body"]
    assert sent["body"]["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    row = ledger(message._request_id)
    assert (row.input_tokens, row.output_tokens, row.cache_write_tokens) == (900, 30, 100)
    assert row.cost_usd == cost(900, 30, cache_write=100)


def test_vertex_streams_thinking_through_stream_raw_predict(world, cloud, ledger):
    with world.anthropic().messages.stream(
        model=cloud["routes"]["vertex-pinned"], max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "THINK: pondering\nSAY: streamed from vertex\nUSAGE: in=80 out=9"}],
    ) as stream:
        message = stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[1].text == "streamed from vertex"
    sent = upstream_calls(world, "/publishers/anthropic/models/")[-1]
    assert sent["path"] == ("/v1/projects/pinned-project/locations/europe-west1/publishers/anthropic/models/"
                            f"{VERTEX_MODEL}:streamRawPredict")
    assert sent["body"]["stream"] is True
    row = ledger(request_id)
    assert (row.input_tokens, row.output_tokens, row.stream) == (80, 9, True)


def test_vertex_through_the_openai_sdk_streamed(world, cloud):
    chunks = list(world.openai().chat.completions.create(
        model=cloud["routes"]["vertex"], stream=True, messages=[{"role": "user", "content": "SAY: hello openai"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello openai"


def test_an_expired_vertex_token_is_refreshed_once_and_the_request_resent(world, cloud):
    alias = cloud["routes"]["vertex"]
    ask = lambda text: world.anthropic().messages.create(  # noqa: E731
        model=alias, max_tokens=50, messages=[{"role": "user", "content": text}])
    ask("SAY: warm")  # the gateway holds a live token now
    before = httpx.get(world.fake.url + "/_fake/vertex/stats").json()
    httpx.post(world.fake.url + "/_fake/vertex/expire")
    assert ask("SAY: after expiry").content[0].text == "after expiry"
    after = httpx.get(world.fake.url + "/_fake/vertex/stats").json()
    assert after["tokens_issued"] == before["tokens_issued"] + 1 and after["refused"] == before["refused"] + 1
    assert ask("SAY: again").content[0].text == "again"  # the new token is kept: no refresh per request
    assert httpx.get(world.fake.url + "/_fake/vertex/stats").json()["tokens_issued"] == after["tokens_issued"]


def test_vertex_counts_tokens_with_count_tokens_raw_predict(world, cloud):
    messages = [{"role": "user", "content": "y" * 80}]
    counted = world.anthropic().messages.count_tokens(model=cloud["routes"]["vertex"], messages=messages)
    assert counted.input_tokens == count_tokens({"messages": messages}) == 21
    sent = upstream_calls(world, "count-tokens:rawPredict")[-1]
    assert sent["body"]["model"] == VERTEX_MODEL


def test_failover_from_a_refusing_anthropic_account_to_vertex(world, cloud, ledger):
    message = world.anthropic().messages.create(model=cloud["routes"]["to-vertex"], max_tokens=50,
                                                messages=[{"role": "user", "content": "SAY: vertex rescued"}])
    assert message.content[0].text == "vertex rescued"
    assert ledger(message._request_id).provider.startswith("vertex-")


def test_test_connection_uses_a_vertex_token(cloud, committed):
    from proxy import checks

    result = checks.account_check(cloud["vertex_account"])
    assert result.ok and result.detail == "answered a one-token request"
