"""Anthropic OAuth accounts end to end: two real gateway processes sharing the test database and a Redis, the
fake upstream's token endpoint and Bearer-checking Messages endpoint (tests/fakes/upstream/wire_oauth.py).
Connecting (PKCE, through the commands), refresh before expiry, refresh on a 401, two processes racing to
refresh (one refresh happens), and a revoked refresh token (the account is marked, the route fails over)."""

import os
import threading
import time
import uuid
from datetime import timedelta
from io import StringIO

import anthropic
import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.conftest import start_gateway, stop_gateway

from .conftest import FAKE_KEY

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/8"  # the racing processes share a lock


@pytest.fixture(scope="module")
def gateways(world, tmp_path_factory):
    import redis

    if not os.environ.get("REDIS_URL"):  # our own database: forget breakers an earlier session left under these ids
        own = redis.Redis.from_url(REDIS_URL)
        stale = list(own.scan_iter(match="gh:*"))
        if stale:
            own.delete(*stale)
        own.close()
    env = {"GATEWAY_OAUTH_TOKEN_URL": world.fake.url + "/v1/oauth/token", "REDIS_URL": REDIS_URL,
           "GATEWAY_BREAKER_THRESHOLD": "5"}  # fmt: skip
    servers = [start_gateway(extra_env=env, tmp_dir=tmp_path_factory.mktemp(f"oauth{i}")) for i in range(2)]
    yield servers
    for server in servers:
        stop_gateway(server)
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match="gh:oauth:*"):
        client.delete(key)
    client.close()


def fake(world, action: str, body: dict | None = None) -> dict:
    if body is None:
        return httpx.get(f"{world.fake.url}/_fake/oauth/{action}").json()
    return httpx.post(f"{world.fake.url}/_fake/oauth/{action}", json=body).json()


def oauth_route(world, *, db_expires_in: float, backup: bool = False) -> tuple[str, object, dict]:
    """A route whose first account is an OAuth account with fresh tokens the fake knows."""
    from accounts import crypto
    from accounts.models import ModelRoute, Provider, ProviderAccount, RouteTarget

    tag = uuid.uuid4().hex[:8]
    tokens = {"access_token": f"seed-access-{tag}", "refresh_token": f"seed-refresh-{tag}", "expires_in": 3600}
    fake(world, "seed", tokens)
    provider = Provider.objects.create(name=f"oa-{tag}", preset="anthropic", kind="anthropic",
                                       base_url=world.fake.url + "/oauth-anthropic", read_timeout=20)  # fmt: skip
    account = ProviderAccount(provider=provider, name="subscription", kind="anthropic_oauth",
                              oauth_refresh_encrypted=crypto.encrypt(tokens["refresh_token"]),
                              oauth_expires_at=timezone.now() + timedelta(seconds=db_expires_in))  # fmt: skip
    account.set_credential(tokens["access_token"])
    account.save()
    route = ModelRoute.objects.create(alias=f"oa-model-{tag}")
    RouteTarget.objects.create(route=route, provider=provider, remote_model="claude-sonnet-4-5")
    if backup:
        spare = Provider.objects.create(name=f"oa-backup-{tag}", kind="anthropic", base_url=world.fake.url)
        key = ProviderAccount(provider=spare, name="key")
        key.set_credential(FAKE_KEY)
        key.save()
        RouteTarget.objects.create(route=route, provider=spare, remote_model="claude-sonnet-4-5", priority=1)
    time.sleep(0.6)  # GATEWAY_CACHE_TTL of the test servers
    return route.alias, account, tokens


def ask(server, alias: str, text: str = "SAY: through oauth", **extra):
    client = anthropic.Anthropic(base_url=server.url, api_key=server.key, max_retries=0)
    return client.messages.create(model=alias, max_tokens=50, messages=[{"role": "user", "content": text}], **extra)


def sent_to_oauth(world) -> list[dict]:
    return [r for r in world.fake.requests if r["path"] == "/oauth-anthropic/v1/messages"]


@pytest.fixture
def served(gateways, world, committed):
    for server in gateways:
        server.key = world.keys["alpha"]
    return gateways


def test_a_token_about_to_expire_is_refreshed_before_use(served, world):
    alias, account, tokens = oauth_route(world, db_expires_in=60)  # inside the 300 s margin
    before = fake(world, "stats")["refreshes"]
    message = ask(served[0], alias, system="Be brief.")
    assert message.content[0].text == "through oauth"
    assert fake(world, "stats")["refreshes"] == before + 1
    sent = sent_to_oauth(world)[-1]
    assert sent["headers"]["authorization"] != f"Bearer {tokens['access_token']}"
    assert "oauth-2025-04-20" in sent["headers"]["anthropic-beta"] and "x-api-key" not in sent["headers"]
    assert [b["text"] for b in sent["body"]["system"]] == [IDENTITY, "Be brief."]  # inserted first, once
    account.refresh_from_db()
    assert account.credential == sent["headers"]["authorization"][7:]  # stored (encrypted) for every process
    assert tokens["access_token"] not in account.credential_encrypted
    assert account.oauth_expires_at > timezone.now() + timedelta(minutes=50) and account.oauth_refreshed_at


def test_a_claude_code_request_keeps_its_own_identity_block(served, world):
    alias, _, _ = oauth_route(world, db_expires_in=3600)
    ask(served[0], alias, system=[{"type": "text", "text": IDENTITY}, {"type": "text", "text": "more"}])
    assert [b["text"] for b in sent_to_oauth(world)[-1]["body"]["system"]] == [IDENTITY, "more"]


def test_a_401_refreshes_the_token_and_the_request_still_succeeds(served, world):
    alias, _, tokens = oauth_route(world, db_expires_in=3 * 3600)
    fake(world, "expire", {"access_token": tokens["access_token"]})  # the upstream revoked it early
    before = fake(world, "stats")["refreshes"]
    assert ask(served[0], alias).content[0].text == "through oauth"
    assert fake(world, "stats")["refreshes"] == before + 1
    bearers = [r["headers"]["authorization"] for r in sent_to_oauth(world)[-2:]]
    assert bearers[0] == f"Bearer {tokens['access_token']}" and bearers[1] != bearers[0]


def test_two_processes_racing_to_refresh_make_one_refresh(served, world):
    alias, _, _ = oauth_route(world, db_expires_in=-10)  # expired in both processes' snapshots
    fake(world, "config", {"refresh_delay_ms": 700})  # both requests arrive while the refresh is under way
    before = fake(world, "stats")["refreshes"]
    answers: list = []
    try:
        threads = [threading.Thread(target=lambda s=s: answers.append(ask(s, alias).content[0].text)) for s in served]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        fake(world, "config", {"refresh_delay_ms": 0})
    assert answers == ["through oauth", "through oauth"]
    assert fake(world, "stats")["refreshes"] == before + 1
    bearers = {r["headers"]["authorization"] for r in sent_to_oauth(world)[-2:]}
    assert len(bearers) == 1  # the second process used the token the first one got


def test_a_revoked_refresh_token_marks_the_account_and_the_route_fails_over(served, world):
    alias, account, tokens = oauth_route(world, db_expires_in=-10, backup=True)
    fake(world, "revoke", {"refresh_token": tokens["refresh_token"]})
    before = fake(world, "stats")["refreshes"]
    assert ask(served[0], alias, "SAY: from the backup").content[0].text == "from the backup"
    assert fake(world, "stats")["refreshes"] == before  # refused: nothing issued
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the breaker writes last_error from a thread
        account.refresh_from_db()
        if account.last_error:
            break
        time.sleep(0.05)
    assert "refresh" in account.last_error and "invalid_grant" in account.last_error
    assert tokens["refresh_token"] not in account.last_error
    # the breaker holds the account out: the next request goes straight to the backup, no refresh attempt
    assert ask(served[1], alias, "SAY: again").content[0].text == "again"


# Only the fake (not the shared world): a django_db test runs first, inside a transaction rolled back after it,
# and a session world built there would vanish for every later test.
@pytest.mark.django_db
def test_connecting_an_account_with_pkce_through_the_commands(fake_upstream, settings):
    from accounts.models import Provider, ProviderAccount

    settings.GATEWAY_OAUTH_AUTHORIZE_URL = fake_upstream.url + "/oauth/authorize"
    settings.GATEWAY_OAUTH_TOKEN_URL = fake_upstream.url + "/v1/oauth/token"
    Provider.objects.create(name="oa-connect", preset="anthropic", kind="anthropic", base_url=fake_upstream.url)
    out = StringIO()
    call_command("oauth_start", "oa-connect/team-sub", stdout=out)
    url = next(line for line in out.getvalue().splitlines() if line.startswith("http"))
    assert "code_challenge_method=S256" in url and "code_challenge=" in url
    pasted = httpx.get(url).json()["code"]  # what the sign-in page shows the operator
    done = StringIO()
    call_command("oauth_finish", "oa-connect/team-sub", pasted, stdout=done)
    account = ProviderAccount.objects.get(provider__name="oa-connect", name="team-sub")
    assert account.kind == "anthropic_oauth" and account.enabled
    assert account.credential.startswith("oat-access-") and account.credential not in account.credential_encrypted
    assert account.oauth_expires_at > timezone.now() + timedelta(minutes=50)
    assert account.credential not in done.getvalue() and "connected" in done.getvalue()
    assert account.oauth_pending_encrypted == ""  # a code works once
    with pytest.raises(Exception, match="no connection in progress"):
        call_command("oauth_finish", "oa-connect/team-sub", pasted, stdout=StringIO())


@pytest.mark.django_db
def test_connecting_from_the_admin_shows_the_url_takes_the_code_and_never_shows_tokens(fake_upstream, settings, admin_client):
    import re

    from accounts.models import Provider, ProviderAccount

    settings.GATEWAY_OAUTH_AUTHORIZE_URL = fake_upstream.url + "/oauth/authorize"
    settings.GATEWAY_OAUTH_TOKEN_URL = fake_upstream.url + "/v1/oauth/token"
    provider = Provider.objects.create(name="oa-admin", preset="anthropic", kind="anthropic", base_url=fake_upstream.url)
    account = ProviderAccount.objects.create(provider=provider, name="sub", kind="anthropic_oauth")
    change = admin_client.get(f"/admin/accounts/provideraccount/{account.pk}/change/").content.decode()
    assert f"/admin/accounts/provideraccount/{account.pk}/connect/" in change
    page = admin_client.get(f"/admin/accounts/provideraccount/{account.pk}/connect/").content.decode()
    url = re.search(r'id="authorize-url" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "terms of use" in page and "code_challenge=" in url
    code = httpx.get(url).json()["code"]
    response = admin_client.post(f"/admin/accounts/provideraccount/{account.pk}/connect/", {"code": code})
    assert response.status_code == 302
    account.refresh_from_db()
    token = account.credential
    assert token.startswith("oat-access-") and account.oauth_expires_at
    shown = admin_client.get(f"/admin/accounts/provideraccount/{account.pk}/change/").content.decode()
    assert "token expires" in shown.lower() and "last refresh" in shown.lower()
    assert token not in shown and "Reconnect" in shown
    wrong = admin_client.post(f"/admin/accounts/provideraccount/{account.pk}/connect/", {"code": "nope#nope"})
    assert "Not connected" in wrong.content.decode()


@pytest.fixture(scope="module")
def without_redis(world, tmp_path_factory):
    """The embedded default: no Redis, so the refresh lock is the process's own."""
    env = {"GATEWAY_OAUTH_TOKEN_URL": world.fake.url + "/v1/oauth/token", "REDIS_URL": ""}
    server = start_gateway(extra_env=env, tmp_dir=tmp_path_factory.mktemp("oauth-local"))
    yield server
    stop_gateway(server)


def test_without_redis_concurrent_requests_in_a_process_make_one_refresh(without_redis, world, committed):
    without_redis.key = world.keys["alpha"]
    alias, _, _ = oauth_route(world, db_expires_in=-10)
    fake(world, "config", {"refresh_delay_ms": 500})
    before = fake(world, "stats")["refreshes"]
    answers: list = []
    try:
        threads = [threading.Thread(target=lambda: answers.append(ask(without_redis, alias).content[0].text))
                   for _ in range(3)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        fake(world, "config", {"refresh_delay_ms": 0})
    assert answers == ["through oauth"] * 3
    assert fake(world, "stats")["refreshes"] == before + 1
