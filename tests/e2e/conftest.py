"""The end-to-end world: a scripted fake upstream (both APIs), the real gateway in front of it, and a committed
configuration — providers of each kind, routes, prices, and named personas' keys:

  alpha        project "alpha", sees every model
  beta         project "beta", allowed only gw-anthropic
  revoked      alpha's key, revoked
  expired      alpha's key, expired yesterday
"""

import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest
from django.utils import timezone

from tests.conftest import RunningServer
from tests.fakes.upstream import FakeUpstream

FAKE_KEY = "sk-fake-upstream-credential"
# model alias -> the fake's model id; "gw-openai" reaches the OpenAI-compatible fake, "gw-anthropic" the Anthropic one
UPSTREAM_ALIASES = ["gw-openai", "gw-anthropic"]
PRICES = {  # $/Mtok: input, output, cache read, cache write
    "fake-gpt": (Decimal("2"), Decimal("8"), Decimal("0.5"), Decimal("0")),
    "fake-claude": (Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75")),
}


@dataclass
class World:
    url: str
    fake: FakeUpstream
    keys: dict[str, str]
    server: RunningServer

    def anthropic(self, key: str = "alpha", **kwargs) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=self.keys[key], **{"max_retries": 0, **kwargs})

    def openai(self, key: str = "alpha", **kwargs) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.keys[key], **{"max_retries": 0, **kwargs})

    def upstream_requests(self) -> list[dict]:
        return self.fake.requests


@pytest.fixture(scope="session")
def fake_upstream():
    fake = FakeUpstream(key=FAKE_KEY)
    fake.start()
    yield fake
    fake.stop()


def build_world(fake: FakeUpstream) -> dict[str, str]:
    from accounts.keys import key_create
    from accounts.models import ModelRoute, Project, Provider, ProviderAccount, RouteTarget
    from usage.models import ModelPrice

    def provider(name, kind, base_url, credential=FAKE_KEY):
        row = Provider.objects.create(name=name, kind=kind, base_url=base_url, read_timeout=20, connect_timeout=2)
        account = ProviderAccount(provider=row, name="main")
        account.set_credential(credential)
        account.save()
        return row

    openai_up = provider("fake-openai", "openai", fake.openai_url)
    anthropic_up = provider("fake-anthropic", "anthropic", fake.url)
    dead = provider("dead", "openai", "http://127.0.0.1:9/v1")  # nothing listens on the discard port

    def route(alias, *targets, **extra):
        row = ModelRoute.objects.create(alias=alias, **extra)
        for priority, (prov, model) in enumerate(targets):
            RouteTarget.objects.create(route=row, provider=prov, remote_model=model, priority=priority)

    route("gw-openai", (openai_up, "fake-gpt"), display_name="Fake GPT")
    route("gw-anthropic", (anthropic_up, "fake-claude"), display_name="Fake Claude", default_max_tokens=1024)
    route("gw-failover", (dead, "fake-gpt"), (openai_up, "fake-gpt"))
    route("claude-*", (openai_up, "fake-gpt"))  # Claude Code's own model names, translated to an OpenAI upstream
    route("gw-*", (openai_up, "fake-gpt"))
    route("gpt-*", (anthropic_up, "fake-claude"))  # OpenAI clients' own model names, translated to Anthropic
    route("native-*", (anthropic_up, "*"))  # pass-through with the client's model name
    for model, (i, o, cr, cw) in PRICES.items():
        ModelPrice.objects.create(
            model=model, input_per_mtok=i, output_per_mtok=o, cache_read_per_mtok=cr, cache_write_per_mtok=cw,
            effective_from=timezone.localdate() - timedelta(days=30),
        )
    # An older price that must not apply any more.
    ModelPrice.objects.create(model="fake-gpt", input_per_mtok=100, output_per_mtok=100,
                              effective_from=timezone.localdate() - timedelta(days=400))

    alpha = Project.objects.create(slug="alpha", name="Alpha")
    beta = Project.objects.create(slug="beta", name="Beta", allowed_models="gw-anthropic")
    keys = {"alpha": key_create(project=alpha, name="alpha")[1], "beta": key_create(project=beta, name="beta")[1]}
    revoked, keys["revoked"] = key_create(project=alpha, name="revoked")
    revoked.revoked_at = timezone.now()
    revoked.save()
    expired, keys["expired"] = key_create(project=alpha, name="expired")
    expired.expires_at = timezone.now() - timedelta(days=1)
    expired.save()
    return keys


@pytest.fixture(scope="session")
def world(gateway_server, fake_upstream, django_db_blocker):
    from django.db import connection

    with django_db_blocker.unblock():
        # Built inside a django_db test's transaction, the world would be rolled back after that test and every
        # later test would meet unknown keys: such a test must not ask for `world` (pytest-django runs it first).
        assert not connection.in_atomic_block, "`world` requested by a django_db test: use fake_upstream instead"
        keys = build_world(fake_upstream)
    return World(url=gateway_server.url, fake=fake_upstream, keys=keys, server=gateway_server)


def ledger_row(request_id: str, timeout: float = 5.0):
    """The UsageRecord the gateway wrote for this request (the writer is asynchronous: poll briefly)."""
    from usage.models import UsageRecord

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = UsageRecord.objects.filter(request_id=request_id).first()
        if row is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"no usage record for {request_id}")


@pytest.fixture
def ledger(django_db_blocker):
    with django_db_blocker.unblock():
        yield ledger_row


CLAUDE_PRICED = "claude-sonnet-4-5-20250929"


@pytest.fixture
def claude_price(world, django_db_blocker):
    """A price for a Claude model (as `manage.py load_prices` adds them), so the world's `claude-*` pattern route
    lists it to Claude Code (proxy/routing.py claude_models); removed afterwards. Waits until the gateway's
    routing snapshot (rebuilt every GATEWAY_CACHE_TTL, 0.5 s in tests) has it."""
    from usage.models import ModelPrice

    with django_db_blocker.unblock():
        price = ModelPrice.objects.create(model=CLAUDE_PRICED, input_per_mtok=3, output_per_mtok=15,
                                          effective_from=timezone.localdate() - timedelta(days=1))  # fmt: skip
    try:
        headers = {"x-api-key": world.keys["alpha"], "user-agent": "claude-code/2.1.197"}
        for _ in range(50):
            listed = httpx.get(f"{world.url}/v1/models", headers=headers).json()["data"]
            if any(m["id"] == CLAUDE_PRICED for m in listed):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"{CLAUDE_PRICED} never listed")
        yield CLAUDE_PRICED
    finally:
        with django_db_blocker.unblock():
            price.delete()
