"""Compressed upstream answers (issue 14): the gateway asks upstreams for no compression (Accept-Encoding:
identity), and an upstream that gzips anyway — here one that gzips everything, streams included — still reaches
the client decoded: same-API pass-through, translated, streamed and complete, with the usage in the ledger."""

import asyncio
import gzip
import json
import threading

import anthropic
import openai
import pytest
from aiohttp import web

from tests.e2e.conftest import ledger_row
from tests.e2e.policy_world import wait_for_config

EVENTS = [
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_gz", "type": "message", "role": "assistant", "model": "gz-model", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello "}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "gzip"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 7}}),
    ("message_stop", {"type": "message_stop"}),
]
COMPLETE = {"id": "msg_gz", "type": "message", "role": "assistant", "model": "gz-model",
            "content": [{"type": "text", "text": "Hello gzip"}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 7}}


class GzipUpstream:
    """An Anthropic upstream that gzips every answer whatever the request's Accept-Encoding says."""

    def __init__(self):
        self.accept_encodings: list[str | None] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0

    async def messages(self, request: web.Request) -> web.StreamResponse:
        self.accept_encodings.append(request.headers.get("Accept-Encoding"))
        body = await request.json()
        if not body.get("stream"):
            return web.Response(body=gzip.compress(json.dumps(COMPLETE).encode()),
                                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"})
        await response.prepare(request)
        compressor = gzip.compress  # one gzip member per event: a decoder must handle a stream cut anywhere
        raw = b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in EVENTS)
        packed = compressor(raw)
        for start in range(0, len(packed), 37):  # arbitrary cuts through the compressed bytes
            await response.write(packed[start:start + 37])
        await response.write_eof()
        return response

    def start(self) -> str:
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            app = web.Application()
            app.router.add_post("/v1/messages", self.messages)
            runner = web.AppRunner(app)
            self.loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        assert ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def gzip_world(gateway_server, django_db_blocker):
    from accounts.keys import key_create
    from accounts.models import ModelRoute, Project, Provider, ProviderAccount, RouteTarget

    upstream = GzipUpstream()
    url = upstream.start()
    with django_db_blocker.unblock():
        provider = Provider.objects.create(name="gzip-anthropic", kind="anthropic", base_url=url, read_timeout=10)
        account = ProviderAccount(provider=provider, name="main")
        account.set_credential("sk-gzip")
        account.save()
        route = ModelRoute.objects.create(alias="gz-claude", default_max_tokens=100)
        RouteTarget.objects.create(route=route, provider=provider, remote_model="gz-model", priority=0)
        project = Project.objects.create(slug="gzip", name="Gzip")
        secret = key_create(project=project, name="gzip")[1]
    wait_for_config(gateway_server.url, secret, "gz-claude")  # the server's route snapshot lives 0.5 s in tests
    yield gateway_server.url, secret, upstream
    upstream.stop()


def test_a_gzip_stream_reaches_an_anthropic_client_decoded(gzip_world, django_db_blocker):
    url, secret, upstream = gzip_world
    client = anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0)
    with client.messages.stream(model="gz-claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    assert text == "Hello gzip"
    assert final.usage.output_tokens == 7
    assert upstream.accept_encodings[-1] == "identity"  # not asked for compression
    with django_db_blocker.unblock():
        row = ledger_row(request_id)
    assert row.outcome == "ok" and row.input_tokens == 11 and row.output_tokens == 7


def test_a_gzip_stream_translated_for_an_openai_client_is_decoded(gzip_world):
    url, secret, _ = gzip_world
    client = openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0)
    chunks = list(client.chat.completions.create(model="gz-claude", stream=True,
                                                 messages=[{"role": "user", "content": "hi"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello gzip"


def test_a_gzip_complete_answer_is_decoded(gzip_world):
    url, secret, _ = gzip_world
    client = anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0)
    message = client.messages.create(model="gz-claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello gzip" and message.usage.output_tokens == 7
    chat = openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0).chat.completions.create(
        model="gz-claude", messages=[{"role": "user", "content": "hi"}])
    assert chat.choices[0].message.content == "Hello gzip"
