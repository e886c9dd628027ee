"""Operator commands of issue 12: gateway_status (+ --json), check_providers (parallel, timeout, exit status),
list_accounts and list_keys (prefixes and last characters, never secrets)."""

import asyncio
import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts import keys
from accounts.models import Project, Provider, ProviderAccount
from proxy.policies.store import get_state
from tests.conftest import database_url
from usage.models import UsageRecord

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-very-secret-credential-1234"


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def account(provider: str, name: str, base_url: str, *, preset="openai_compatible", secret=SECRET, **fields):
    row, _ = Provider.objects.get_or_create(name=provider, defaults={"preset": preset, "kind": "openai",
                                                                     "base_url": base_url})  # fmt: skip
    acct = ProviderAccount(provider=row, name=name, **fields)
    acct.set_credential(secret)
    acct.save()
    return acct


@contextmanager
def upstream(handler_get, handler_post=None):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            handler_get(self)

        def do_POST(self):
            (handler_post or handler_get)(self)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def answer(handler, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


# --- list_accounts / list_keys ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_accounts_shows_last_characters_never_the_credential_and_filters():
    account("p-one", "main", "http://127.0.0.1:9/v1")
    account("p-two", "spare", "http://127.0.0.1:9/v1", enabled=False)
    out = run("list_accounts")
    assert "p-one" in out and "p-two" in out and "…1234" in out and SECRET not in out
    assert "p-two" not in run("list_accounts", "--enabled") and "p-one" not in run("list_accounts", "--disabled")
    rows = json.loads(run("list_accounts", "--provider", "p-two", "--json"))["accounts"]
    assert [(r["provider"], r["account"], r["enabled"], r["credential"]) for r in rows] == [
        ("p-two", "spare", False, "…1234")
    ]


@pytest.mark.django_db
def test_list_keys_shows_prefixes_never_secrets_and_filters_by_project_and_status():
    alpha = Project.objects.create(slug="lk-alpha", name="Alpha")
    beta = Project.objects.create(slug="lk-beta", name="Beta")
    live, live_secret = keys.key_create(project=alpha, name="live")
    gone, gone_secret = keys.key_create(project=beta, name="gone")
    gone.revoked_at = timezone.now()
    gone.save()
    out = run("list_keys")
    assert live.prefix in out and gone.prefix in out
    assert live_secret not in out and gone_secret not in out
    rows = json.loads(run("list_keys", "--status", "revoked", "--project", "lk-alpha", "--project", "lk-beta",
                          "--json"))["keys"]  # fmt: skip
    assert [(r["project"], r["status"]) for r in rows] == [("lk-beta", "revoked")]
    assert [r["name"] for r in json.loads(run("list_keys", "--project", "lk-alpha", "--json"))["keys"]] == ["live"]


# --- gateway_status ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_gateway_status_shows_health_breaker_cooldown_and_todays_requests_and_spend():
    good = account("st-prov", "good", "http://127.0.0.1:9/v1")
    bad = account("st-prov", "bad", "http://127.0.0.1:9/v1")
    for cost in ("0.25", "0.50"):
        UsageRecord.objects.create(request_id=f"r{cost}", provider="st-prov", account="good", ingress_api="openai",
                                   http_status=200, outcome="ok", cost_usd=Decimal(cost))  # fmt: skip
    asyncio.run(_open_breaker(bad.id))
    try:
        document = json.loads(run("gateway_status", "--json"))
        table = run("gateway_status")
    finally:
        asyncio.run(_reset(bad.id))
    rows = {r["account"]: r for r in document["accounts"] if r["provider"] == "st-prov"}
    assert rows["good"]["requests_today"] == 2
    assert Decimal(rows["good"]["spend_today_usd"]) == Decimal("0.75")
    assert rows["good"]["in_flight"] is None  # no --server: this process cannot know another's
    assert "HEALTH" in table and "0.7500" in table
    if settings.REDIS_URL:  # the breakers are shared: this command reads the one opened above
        assert rows["good"]["health"] == "ok" and document["breakers_from"] == "redis"
        assert rows["bad"]["health"] == "unhealthy" and rows["bad"]["breaker"].startswith("open")
        assert 0 < rows["bad"]["cooldown_s"] <= 120
        assert document["unhealthy"] >= 1 and "unhealthy" in table
    else:  # each server process keeps its own (tests/e2e/test_gateway_status_server.py reads one with --server)
        assert rows["good"]["health"] == rows["bad"]["health"] == rows["bad"]["breaker"] == "unknown"
        assert document["breakers_from"] == "unknown"
    assert good.id != bad.id


async def _open_breaker(account_id: int) -> None:
    state = get_state()
    await state.breaker_cooldown(account_id, 120, "auth")
    await _close(state)


async def _reset(account_id: int) -> None:
    state = get_state()
    await state.breaker_reset(account_id)
    await _close(state)


async def _close(state) -> None:
    close = getattr(state, "aclose", None)
    if close is not None:
        await close()


# --- check_providers ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_check_providers_probes_in_parallel():
    """Each upstream answers only once all three probes are waiting on it: sequential probes would time out."""
    barrier = threading.Barrier(3, timeout=5)

    def models(handler):
        try:
            barrier.wait()
            answer(handler, 200, {"data": [{"id": "m"}]})
        except threading.BrokenBarrierError:
            answer(handler, 500, {"error": {"message": "probes were not concurrent"}})

    with upstream(models) as url:
        for i in range(3):
            account(f"par-{i}", "main", url)
        document = json.loads(run("check_providers", "--json", "--timeout", "8", *(f"--provider=par-{i}" for i in range(3))))
    assert [r["ok"] for r in document["accounts"]] == [True, True, True]
    assert document["failed"] == 0


@pytest.mark.django_db
def test_check_providers_reports_a_timeout_and_an_error_and_fails():
    hang = threading.Event()

    def slow_or_refused(handler):
        if "slow" in handler.headers.get("authorization", ""):
            hang.wait(5)
            answer(handler, 200, {"data": []})
        else:
            answer(handler, 401, {"error": {"message": "invalid api key"}})

    with upstream(slow_or_refused) as url:
        slow = account("cp-slow", "main", url, secret="sk-slow-0000000000")
        account("cp-refused", "main", url, secret="sk-refused-000000000")
        out = StringIO()
        with pytest.raises(CommandError, match="2 of 2 account"):
            call_command("check_providers", "--timeout", "0.5", "--provider=cp-slow", "--provider=cp-refused", stdout=out)
        hang.set()
    assert "timed out after 0.5 s" in out.getvalue() and "HTTP 401: invalid api key" in out.getvalue()
    slow.refresh_from_db()
    assert slow.last_error.startswith("timed out")


@pytest.mark.django_db
def test_azure_has_no_model_list_so_the_probe_is_a_one_token_request():
    seen = []

    def chat(handler):
        length = int(handler.headers.get("content-length") or 0)
        seen.append((handler.command, handler.path, handler.headers.get("api-key"),
                     json.loads(handler.rfile.read(length) or b"null")))  # fmt: skip
        answer(handler, 200, {"choices": []})

    with upstream(chat) as url:
        provider = Provider(name="az", preset="azure_openai", base_url=url.removesuffix("/v1") + "/openai/deployments/d1")
        provider.full_clean()
        provider.save()
        acct = ProviderAccount(provider=provider, name="main")
        acct.set_credential("azure-key-123456")
        acct.save()
        document = json.loads(run("check_providers", "--json", "--provider=az"))
    assert document["accounts"][0]["detail"] == "answered a one-token request"
    method, path, api_key, body = seen[0]
    assert (method, api_key) == ("POST", "azure-key-123456")
    assert path == "/openai/deployments/d1/chat/completions?api-version=2024-10-21"
    assert body["max_completion_tokens"] == 1


def test_check_providers_exit_status_is_non_zero_on_failure(committed):
    """As cron or a container health check runs it: a separate process (on the committed test database),
    its exit status."""
    dead = account("exit-dead", "main", "http://127.0.0.1:9/v1")  # nothing listens on the discard port
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict)}
    try:
        done = subprocess.run([sys.executable, "manage.py", "check_providers", "--provider", "exit-dead",
                               "--timeout", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        dead.provider.delete()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "exit-dead" in done.stdout and "1 of 1 account(s) failed" in done.stderr
    assert SECRET not in done.stdout + done.stderr
