"""Issue 21 part 2, "a gateway that calls itself": the shell a new user had (ANTHROPIC_BASE_URL and
ANTHROPIC_API_KEY exported for Claude Code, then `bin/run` from that shell) made the gateway its own upstream,
and one request caused thousands. Now start_from_env refuses that environment, the other configuration paths
warn, and a loop that is configured anyway costs one refused hop per request: 508 Loop Detected in the
caller's format, one ledger row, no further upstream call (proxy/hop.py)."""

import json
import os
import sqlite3
import time
import uuid

import anthropic
import httpx
import openai
import pytest

from tests.conftest import free_port, start_gateway, stop_gateway

from .test_providers_seeds import manage

HOP = "x-gatehouse-hop"
GATEWAY_KEY = "gh-my-own-gateway-key-0123456789"


def _rows(db_path) -> list[tuple]:
    with sqlite3.connect(db_path) as db:
        return db.execute(
            "SELECT request_id, http_status, outcome, error_type, attempts FROM usage_usagerecord ORDER BY id"
        ).fetchall()


def _rows_after(db_path, before: int, expected: int, timeout: float = 10.0) -> list[tuple]:
    """The ledger rows written since `before` rows, once `expected` of them are there (the writer is
    asynchronous); with no loop guard the count would run far past `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _rows(db_path)[before:]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    """The issue's shell on a fresh embedded installation: the gateway's own URL and its own key exported as the
    Anthropic upstream. start_from_env refuses it; the same loop written as a config file is applied (with a
    warning), and the gateway serves on the port the provider points at."""
    tmp_path = tmp_path_factory.mktemp("self-loop")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "GATEWAY_CONFIG")}
    env.update({
        "GATEWAY_DATA_DIR": str(tmp_path / "data"), "HOST": "127.0.0.1", "PORT": str(port),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_API_KEY": GATEWAY_KEY,
        "GATEWAY_API_KEY": GATEWAY_KEY,
    })  # fmt: skip
    assert manage("migrate", "--noinput", "-v0", env=env).returncode == 0
    refused = manage("start_from_env", env=env)
    config = tmp_path / "loop.json"
    config.write_text(json.dumps({
        "providers": [{"name": "myself", "kind": "anthropic", "base_url": f"http://localhost:{port}",
                       "api_key_env": "ANTHROPIC_API_KEY"}],
        "models": [{"alias": "sonnet", "targets": [{"provider": "myself", "model": "claude-sonnet-4-5"}]}],
        "inbound_keys": [{"project": "default", "name": "GATEWAY_API_KEY", "secret": GATEWAY_KEY}],
    }))  # fmt: skip
    applied = manage("apply_config", str(config), env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    server = start_gateway(extra_env={**env, "DATABASE_URL": "", "REDIS_URL": ""}, tmp_dir=tmp_path, port=port)
    yield server, refused, applied, tmp_path / "data" / "gatehouse.sqlite3"
    stop_gateway(server)


def test_start_from_env_refuses_the_gateways_own_address_and_changes_nothing(shell):
    _, refused, _, db_path = shell
    assert refused.returncode != 0
    assert "was not applied (nothing changed)" in refused.stderr
    assert "provider 'anthropic'" in refused.stderr and "this gateway's own address" in refused.stderr
    assert GATEWAY_KEY not in refused.stderr + refused.stdout  # the credential is never echoed
    with sqlite3.connect(db_path) as db:  # the providers in the database are apply_config's, not the refused ones
        assert db.execute("SELECT name FROM accounts_provider").fetchall() == [("myself",)]


def test_apply_config_warns_about_the_gateways_own_address(shell):
    _, _, applied, _ = shell
    assert "providers[0].base_url: provider 'myself'" in applied.stderr
    assert "this gateway's own address" in applied.stderr


def test_one_anthropic_request_costs_one_refused_hop(shell):
    server, _, _, db_path = shell
    before = len(_rows(db_path))
    client = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="sonnet", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    error = caught.value
    assert error.status_code == 508
    assert error.body["type"] == "error" and error.body["error"]["type"] == "api_error"
    assert "loop detected" in error.body["error"]["message"]
    assert error.response.headers["x-should-retry"] == "false"  # an SDK with retries on does not try again
    rows = _rows_after(db_path, before, 2)
    assert len(rows) == 2, rows  # the client's request and the one hop it made: not thousands
    refused, outer = rows  # the refused hop ends (and is written) first
    assert refused[1:] == (508, "client_error", "loop_detected", 0)  # refused before any upstream call
    assert outer[0] == error.response.headers["request-id"] and outer[1] == 508 and outer[4] == 1


def test_one_openai_request_costs_one_refused_hop_and_gets_an_openai_error(shell):
    server, _, _, db_path = shell
    before = len(_rows(db_path))
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=20)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "hi"}], stream=True)
    error = caught.value
    assert error.status_code == 508
    assert error.body["code"] == "loop_detected" and error.body["type"] == "server_error"
    rows = _rows_after(db_path, before, 2)
    assert len(rows) == 2, rows
    assert rows[0][1:] == (508, "client_error", "loop_detected", 0)
    assert rows[1][0] == error.response.headers["x-request-id"] and rows[1][1] == 508


# --- the hop header on the shared test world ----------------------------------------------------------------------


def _hop_sent(world, marker: str) -> str:
    sent = [r for r in world.fake.requests if marker in json.dumps(r["body"])]
    assert len(sent) == 1
    return sent[0]["headers"][HOP]


def test_upstream_calls_carry_the_chain_with_this_gateway_last(world):
    marker = uuid.uuid4().hex
    world.anthropic().messages.create(model="gw-anthropic", max_tokens=10,
                                      messages=[{"role": "user", "content": f"SAY: {marker}"}])  # fmt: skip
    own = _hop_sent(world, marker)
    assert len(own) == 16 and int(own, 16) >= 0  # an id derived from the deployment's secret, not the secret
    chained = uuid.uuid4().hex
    world.openai(default_headers={HOP: "team-gateway"}).chat.completions.create(
        model="gw-openai", messages=[{"role": "user", "content": f"SAY: {chained}"}]
    )
    assert _hop_sent(world, chained) == f"team-gateway, {own}"  # another gateway before us: served, chained


def test_a_request_that_names_this_gateway_is_refused_without_an_upstream_call(world):
    marker = uuid.uuid4().hex
    world.anthropic().messages.create(model="gw-anthropic", max_tokens=10,
                                      messages=[{"role": "user", "content": f"SAY: {marker}"}])  # fmt: skip
    own = _hop_sent(world, marker)
    upstream_calls = len(world.fake.requests)
    looping = world.anthropic(default_headers={HOP: f"team-gateway, {own}"})
    with pytest.raises(anthropic.APIStatusError) as caught:
        looping.messages.create(model="gw-anthropic", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 508 and caught.value.body["error"]["type"] == "api_error"
    with pytest.raises(anthropic.APIStatusError) as counted:
        looping.messages.count_tokens(model="gw-anthropic", messages=[{"role": "user", "content": "x"}])
    assert counted.value.status_code == 508
    too_long = world.openai(default_headers={HOP: ", ".join(f"gw{i}" for i in range(8))})
    with pytest.raises(openai.APIStatusError) as chain:
        too_long.responses.create(model="gw-openai", input="x")
    assert chain.value.status_code == 508 and chain.value.body["code"] == "loop_detected"
    batch = httpx.post(world.url + "/v1/messages/batches", headers={"x-api-key": world.keys["alpha"], HOP: own},
                       json={"requests": []}, timeout=10)  # fmt: skip
    assert batch.status_code == 508 and batch.json()["error"]["type"] == "api_error"
    assert len(world.fake.requests) == upstream_calls  # nothing reached the upstream


def test_management_api_warns_about_the_gateways_own_address(world, committed):
    from accounts.api_tokens import token_create

    token = token_create(name=f"loop-{uuid.uuid4().hex[:8]}", scope="write")[1]
    api = httpx.Client(base_url=world.url + "/manage/v1", headers={"authorization": f"Bearer {token}"}, timeout=15)
    name = f"self-{uuid.uuid4().hex[:8]}"
    created = api.post("/providers", json={"name": name, "kind": "openai", "base_url": world.url + "/v1"})
    assert created.status_code == 201, created.text
    assert "this gateway's own address" in created.json()["warnings"][0]
    again = api.put(f"/providers/{name}", json=created.json())  # what a GET returns can be sent back
    assert again.status_code == 200 and again.json()["warnings"] == created.json()["warnings"]
    fixed = api.put(f"/providers/{name}", json={**created.json(), "base_url": world.fake.openai_url})
    assert fixed.json()["warnings"] == []
    api.close()
