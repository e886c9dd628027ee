"""`manage.py gateway_status` against a real server whose account breaker is open (issue 21). Without Redis the
breaker lives in the server process: the command must read it there (--server, with a management token) or say
"unknown", never "closed"/"ok"; a missing token, a refused token or an unreachable server is one clear line."""

import json
import os
import subprocess
import sys
import time
import uuid
from io import StringIO

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command

from tests.conftest import ROOT, database_url, free_port, start_gateway, stop_gateway
from tests.e2e import policy_world as pw

BREAKER_ENV = {"GATEWAY_BREAKER_THRESHOLD": "1", "GATEWAY_BREAKER_WINDOW_SECONDS": "60",
               "GATEWAY_BREAKER_COOLDOWN_SECONDS": "300"}  # fmt: skip


@pytest.fixture(scope="module")
def server(world, tmp_path_factory):
    running = start_gateway(BREAKER_ENV, tmp_dir=tmp_path_factory.mktemp("status"))
    yield running
    stop_gateway(running)


def status(*args) -> dict:
    out = StringIO()
    call_command("gateway_status", "--json", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def manage_status(*args) -> subprocess.CompletedProcess:
    """The command as an operator runs it, in a process of its own."""
    from django.db import connection

    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_MANAGE_TOKEN"}
    env["DATABASE_URL"] = database_url(connection.settings_dict)
    return subprocess.run([sys.executable, "manage.py", "gateway_status", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _open_breaker(server, world) -> tuple[str, str]:
    """A route on one account, failed once with a 500: with threshold 1 the server opens its breaker."""
    from accounts.models import ProviderAccount

    alias, secret, prov = pw.served_route(server.url, world.fake, route_fields={"retry_max_attempts": 1})
    failed = pw.openai_chat(server.url, secret, alias, "FAIL: 500")
    assert failed.status_code >= 500, failed.text
    assert ProviderAccount.objects.filter(provider=prov).count() == 1
    return prov.name, "main"


def test_gateway_status_reads_an_open_breaker_from_the_server_or_says_unknown(world, server, committed):
    from accounts.api_tokens import token_create

    key = _open_breaker(server, world)
    token = token_create(name=f"status-{uuid.uuid4().hex[:6]}", scope="read")[1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the failure is recorded just after the answer
        live = {(r["provider"], r["account"]): r for r in status("--server", server.url, "--token", token)["accounts"]}
        if live[key]["breaker"] != "closed":
            break
        time.sleep(0.1)
    document = status("--server", server.url, "--token", token)
    row = next(r for r in document["accounts"] if (r["provider"], r["account"]) == key)
    assert row["breaker"].startswith("open") and row["health"] == "unhealthy" and 250 < row["cooldown_s"] <= 300
    assert row["in_flight"] == 0 and document["breakers_from"] == "server"

    local = status()  # no --server: this process cannot see the server's breakers
    row = next(r for r in local["accounts"] if (r["provider"], r["account"]) == key)
    if settings.REDIS_URL:  # shared: the command reads the same breaker
        assert (local["breakers_from"], row["health"]) == ("redis", "unhealthy") and row["breaker"].startswith("open")
    else:
        assert (local["breakers_from"], row["breaker"], row["health"]) == ("unknown", "unknown", "unknown")
        table = manage_status()
        assert table.returncode == 0 and "Breaker states: unknown" in table.stderr and "--server URL" in table.stderr


def test_gateway_status_server_failures_are_one_clear_line(world, server, committed):
    checks = [
        (("--server", server.url), "needs a management token: give --token or set GATEWAY_MANAGE_TOKEN"),
        (("--server", server.url, "--token", "ghm_not-a-token"), "refused the management token (401"),
        (("--server", f"http://127.0.0.1:{free_port()}", "--token", "ghm_x"), "could not reach http://127.0.0.1:"),
    ]
    for args, message in checks:
        done = manage_status(*args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.startswith("CommandError: ") and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert httpx.get(server.url + "/health").status_code == 200
