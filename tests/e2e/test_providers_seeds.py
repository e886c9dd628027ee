"""The seeds' configurations: claude-proxy's config.json through apply_config, and the environment-only start
(ANTHROPIC_* / OPENAI_* / GATEWAY_API_KEY, no admin step), each ending in a real request through the gateway."""

import json
import os
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import anthropic
import openai
import pytest
from django.core.management import call_command

from tests.conftest import start_gateway, stop_gateway

from .conftest import FAKE_KEY

ROOT = Path(__file__).resolve().parents[2]
AK = "sk-claude-proxy-inbound-0123456789"


def manage(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_claude_proxy_config_json_is_applied_as_it_is(world, tmp_path, committed):
    from accounts.models import ApiKey, ModelRoute, Provider

    config = {
        "ak": AK,
        "providers": [
            {"name": "seed-up", "base_url": world.fake.url, "api_key": FAKE_KEY,  # claude-proxy adds /v1 itself
             "models": [{"id": "seed-sonnet", "display_name": "Seed Sonnet", "remote_id": "fake-gpt"},
                        {"id": "seed-plain"}]},
            {"base_url": "https://api.deepseek.com/v1", "api_key": "sk-deepseek-not-used",
             "models": [{"id": "seed-sonnet", "remote_id": "deepseek-chat"}]},
        ],
    }  # fmt: skip
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    out = StringIO()
    call_command("apply_config", str(path), stdout=out, stderr=StringIO())
    assert "providers  2 created" in out.getvalue() and "keys       1 created" in out.getvalue()
    assert Provider.objects.get(name="deepseek").preset == "deepseek"  # preset guessed from the URL
    route = ModelRoute.objects.get(alias="seed-sonnet")
    assert route.display_name == "Seed Sonnet"
    assert [(t.provider.name, t.remote_model) for t in route.targets.order_by("priority")] == [
        ("seed-up", "fake-gpt"), ("deepseek", "deepseek-chat")
    ]
    again = StringIO()
    call_command("apply_config", str(path), stdout=again, stderr=StringIO())
    assert "0 created, 0 updated" in again.getvalue()  # idempotent
    assert ApiKey.objects.filter(project__slug="claude-proxy").count() == 1

    time.sleep(0.6)  # the test server's GATEWAY_CACHE_TTL
    client = anthropic.Anthropic(base_url=world.url, api_key=AK, max_retries=0)
    message = client.messages.create(model="seed-sonnet", max_tokens=20,
                                     messages=[{"role": "user", "content": "SAY: seeded"}])  # fmt: skip
    assert message.content[0].text == "seeded"
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=world.url, api_key=AK + "x", max_retries=0).messages.create(
            model="seed-sonnet", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


CLAUDE_PROXY_EXAMPLE = ROOT / "tests" / "fixtures" / "seeds" / "claude-proxy-config.json"


def test_claude_proxy_readme_example_calls_base_url_v1_chat_completions(world, tmp_path, committed):
    """Issue 21: claude-proxy sends {base_url}/v1/chat/completions and its example base URL has no /v1; the
    import keeps that rule, so a migrated config reaches the same URL (not {base_url}/chat/completions, a 404)."""
    from accounts.models import ModelRoute, Provider

    example = json.loads(CLAUDE_PROXY_EXAMPLE.read_text())
    out = StringIO()
    call_command("apply_config", str(CLAUDE_PROXY_EXAMPLE), stdout=out, stderr=StringIO())  # as written
    provider = Provider.objects.get(name="example")
    assert (provider.kind, provider.base_url, provider.read_timeout) == ("openai", "https://api.example.com/v1", 300)
    assert {r.alias: r.targets.get().remote_model for r in ModelRoute.objects.filter(alias__in=("glm", "minimax"))} \
        == {"glm": "deepseek-chat", "minimax": "mimo-v2-flash"}  # fmt: skip

    # The same file with its upstream moved to the fake (no /v1, as claude-proxy's users write it).
    example["providers"][0].update(base_url=world.fake.url, api_key=FAKE_KEY)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(example))
    call_command("apply_config", str(path), stdout=StringIO(), stderr=StringIO())
    time.sleep(0.6)  # the test server's GATEWAY_CACHE_TTL
    client = anthropic.Anthropic(base_url=world.url, api_key=example["ak"], max_retries=0)
    message = client.messages.create(model="glm", max_tokens=20, messages=[{"role": "user", "content": "SAY: glm"}])
    assert message.content[0].text == "glm"
    sent = world.fake.requests[-1]
    assert (sent["path"], sent["body"]["model"]) == ("/v1/chat/completions", "deepseek-chat")
    assert sent["headers"]["authorization"] == f"Bearer {FAKE_KEY}"


@pytest.fixture(scope="module")
def env_only(fake_upstream, tmp_path_factory):
    """A fresh embedded installation (SQLite in its own data dir, no Redis) started from the environment only,
    as bin/run does: migrate, start_from_env, bootstrap, serve."""
    tmp_path = tmp_path_factory.mktemp("env-only")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "GATEWAY_CONFIG")}
    env.update({
        "GATEWAY_DATA_DIR": str(tmp_path / "data"), "ANTHROPIC_API_KEY": FAKE_KEY,
        "ANTHROPIC_BASE_URL": fake_upstream.url, "OPENAI_API_KEY": FAKE_KEY,
        "OPENAI_BASE_URL": fake_upstream.openai_url, "GATEWAY_API_KEY": "my-own-gateway-key-42",
    })  # fmt: skip
    for step in (("migrate", "--noinput", "-v0"), ("start_from_env",), ("start_from_env",), ("bootstrap",)):
        done = manage(*step, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    server = start_gateway(extra_env={**env, "DATABASE_URL": "", "REDIS_URL": ""}, tmp_dir=tmp_path)
    yield server, done, env
    stop_gateway(server)


def test_environment_only_start_serves_claude_aliases_with_the_given_key(env_only, fake_upstream):
    server, _, env = env_only
    client = anthropic.Anthropic(base_url=server.url, api_key=env["GATEWAY_API_KEY"], max_retries=0)
    for model in ("sonnet", "opus", "haiku", "claude-sonnet-4-6"):
        message = client.messages.create(model=model, max_tokens=20,
                                         messages=[{"role": "user", "content": f"SAY: hi {model}"}])  # fmt: skip
        assert message.content[0].text == f"hi {model}"
    sent = [r for r in fake_upstream.requests if r["path"] == "/v1/messages"][-4:]
    assert [r["body"]["model"] for r in sent] == [
        "claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5", "claude-sonnet-4-6"
    ]
    assert all(r["headers"]["x-api-key"] == FAKE_KEY for r in sent)
    gpt = openai.OpenAI(base_url=server.url + "/v1", api_key=env["GATEWAY_API_KEY"], max_retries=0)
    completion = gpt.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "SAY: oai"}])
    assert completion.choices[0].message.content == "oai"


def test_environment_only_start_is_idempotent_and_says_what_it_did(env_only):
    _, _, env = env_only
    second = manage("start_from_env", env=env)
    assert "0 created, 0 updated" in second.stdout
    nothing = manage("start_from_env", env={k: v for k, v in env.items() if not k.endswith("_API_KEY")})
    assert "nothing to set up" in nothing.stdout
