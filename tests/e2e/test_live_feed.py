"""The live request feed over a real websocket on the real server: a staff session receives a finished request's
event; anonymous, non-staff and cross-site connections are refused; a dead or hung channel layer costs the
request nothing (usage/feed.py)."""

import asyncio
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.test import override_settings
from openai import OpenAI
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import free_port, start_gateway, stop_gateway
from usage import feed, metrics


def session_cookie(user) -> str:
    """What the admin login leaves in the database and the browser: a session for `user`."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"sessionid={session.session_key}"


@pytest.fixture
def users(committed):
    from django.contrib.auth.models import User

    tag = secrets.token_hex(4)
    staff = User.objects.create_superuser(f"feed-staff-{tag}", password=secrets.token_urlsafe(12))
    plain = User.objects.create_user(f"feed-user-{tag}", password=secrets.token_urlsafe(12))
    yield {"staff": staff, "plain": plain}
    staff.delete()
    plain.delete()


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/ws/usage/live/"


def open_feed(server_url: str, cookie: str | None, origin: str | None = None):
    headers = {"Cookie": cookie} if cookie else None
    return connect(ws_url(server_url), additional_headers=headers, origin=origin or server_url, open_timeout=5)


def next_event(ws, request_id: str, timeout: float = 5.0) -> dict:
    import json

    deadline = time.monotonic() + timeout
    while True:
        event = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if event["request_id"] == request_id:
            return event


def test_staff_receive_each_finished_request(world, users):
    with open_feed(world.url, session_cookie(users["staff"])) as ws:
        time.sleep(0.2)  # the watcher is registered once the handshake is done; Redis: other processes see it <1 s
        response = world.openai().chat.completions.with_raw_response.create(
            model="gw-openai", messages=[{"role": "user", "content": "USAGE: in=100 out=20\nSAY: watched"}]
        )
        request_id = response.headers["x-request-id"]
        event = next_event(ws, request_id)
        other = world.anthropic().messages.with_raw_response.create(
            model="gw-anthropic", max_tokens=20, messages=[{"role": "user", "content": "SAY: second"}]
        )
        second = next_event(ws, other.headers["request-id"])
    assert second["api"] == "anthropic" and second["model"] == "gw-anthropic" and second["status"] == 200
    assert event["project"] == "alpha" and event["model"] == "gw-openai" and event["api"] == "openai"
    assert event["provider"] == "fake-openai" and event["status"] == 200 and event["outcome"] == "ok"
    assert (event["input_tokens"], event["output_tokens"]) == (100, 20)
    assert Decimal(event["cost_usd"]) == Decimal(100 * 2 + 20 * 8) / 1_000_000  # fake-gpt: $2 / $8 per Mtok
    assert event["key"].startswith("gh_") and len(event["key"]) == 11  # the visible prefix, never the secret
    assert world.keys["alpha"] not in str(event)


@pytest.mark.parametrize("who", ["anonymous", "plain"])
def test_anyone_but_staff_is_refused(world, users, who):
    cookie = None if who == "anonymous" else session_cookie(users[who])
    with pytest.raises(InvalidStatus) as refused:
        open_feed(world.url, cookie)
    assert refused.value.response.status_code == 403


def test_another_sites_page_is_refused_even_with_a_staff_cookie(world, users):
    with pytest.raises(InvalidStatus) as refused:
        open_feed(world.url, session_cookie(users["staff"]), origin="https://evil.example")
    assert refused.value.response.status_code == 403


def test_redis_dying_under_a_watched_feed_costs_the_requests_nothing(world, users, tmp_path):
    """Watchers and channel layer on a Redis of the test's own, killed while a staff member watches."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (the CI script installs it)")
    port = free_port()
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
         str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = start_gateway({"REDIS_URL": f"redis://127.0.0.1:{port}/0"}, tmp_dir=tmp_path)
    try:
        client = OpenAI(base_url=server.url + "/v1", api_key=world.keys["alpha"], max_retries=0)
        with open_feed(server.url, session_cookie(users["staff"])) as ws:
            time.sleep(0.2)
            first = client.chat.completions.with_raw_response.create(
                model="gw-openai", messages=[{"role": "user", "content": "SAY: before"}]
            )
            assert next_event(ws, first.headers["x-request-id"])["status"] == 200  # through the Redis layer
            redis_server.send_signal(signal.SIGKILL)
            redis_server.wait()
            for _ in range(5):  # first while this process still believes someone watches, then after it checked
                reply = client.chat.completions.create(model="gw-openai", messages=[{"role": "user", "content": "SAY: ok"}])
                assert reply.choices[0].message.content == "ok"
                time.sleep(0.3)
    finally:
        stop_gateway(server)
        if redis_server.poll() is None:
            redis_server.kill()
    assert "usage/feed.py" not in server.log() and "usage/consumers.py" not in server.log()  # no traceback of ours


# --- the publishing side in process: a layer that is down or hangs --------------------------------------------


@dataclass
class FakeCall:
    """What usage.feed reads of a proxy.metering.Call."""

    request_id: str = "req_test"
    ingress: str = "openai"
    alias: str = "gw-openai"
    remote_model: str = "fake-gpt"
    provider: str = "fake-openai"
    stream: bool = False
    key: object = None
    ttft_ms: int | None = None
    usage: object = field(default_factory=lambda: type("U", (), dict(input_tokens=1, output_tokens=2,
                                                                       cache_read_tokens=0, cache_write_tokens=0))())
    created_at: object = None

    def __post_init__(self):
        from django.utils import timezone

        self.created_at = timezone.now()


def hung_server() -> tuple[int, socket.socket]:
    """Accepts connections and never answers: a Redis that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], listener


def dropped(reason: str) -> float:
    return metrics.feed_dropped.labels(reason)._value.get()


@pytest.mark.parametrize("layer", ["dead", "hung"])
def test_publish_to_a_broken_layer_never_waits_nor_raises(layer, monkeypatch):
    listener = None
    if layer == "dead":
        port = free_port()
    else:
        port, listener = hung_server()
    url = f"redis://127.0.0.1:{port}/0"
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}}
    monkeypatch.setattr(feed, "_redis_url", url)
    monkeypatch.setattr(feed, "_watching", True)  # someone watches (as far as this process last heard)

    async def scenario():
        monkeypatch.setattr(feed, "_checked_at", time.monotonic() + 60)  # no refresh during the test
        before = {r: dropped(r) for r in ("error", "timeout", "backlog")}
        started = time.perf_counter()
        for i in range(feed.MAX_PENDING + 20):
            feed.publish(FakeCall(request_id=f"req_{i}"), 200, "ok", Decimal("0.01"), 0.1)
        publishing = time.perf_counter() - started
        assert len(feed._pending) == feed.MAX_PENDING
        await asyncio.gather(*list(feed._pending), return_exceptions=True)
        after = {r: dropped(r) for r in before}
        return publishing, {r: after[r] - before[r] for r in before}

    try:
        with override_settings(CHANNEL_LAYERS=layers):
            publishing, counts = asyncio.run(scenario())
    finally:
        if listener is not None:
            listener.close()
    # 120 events handed over without waiting for the layer (a single send may wait SEND_TIMEOUT = 0.5 s)
    assert publishing < feed.SEND_TIMEOUT
    assert counts["backlog"] == 20
    assert counts["error"] + counts["timeout"] == feed.MAX_PENDING
    if layer == "hung":
        assert counts["timeout"] == feed.MAX_PENDING
