"""Drop-in for the gateways Gatehouse replaces (issue 29, docs/coming-from.md): each one's documented setup
(tests/fixtures/seeds/, as its docs write it; only the upstream moved to the fake on loopback) starts a fresh
Gatehouse as bin/run does (migrate, start_from_env, bootstrap, serve) and serves that gateway's documented client
example through the real server. Also: the unmapped-variable warning, migrate_from --dry-run and the real run,
the Coding Gateway's setting variables, and LLM Gateway's CLI verbs as `gatehouse` aliases."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import yaml
from django.core.management import call_command

from accounts.seeds.common import read_env_file
from tests.conftest import start_gateway, stop_gateway

from .conftest import FAKE_KEY

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "tests" / "fixtures" / "seeds"
# Variables a developer's shell may hold that would change what the documented setups make.
FOREIGN = ("DATABASE_URL", "REDIS_URL", "GATEWAY_CONFIG", "GATEWAY_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
           "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_SMALL_MODEL", "GATEWAY_TOKEN", "MODEL_MAP",
           "CONFIG_PATH")  # fmt: skip


def manage(args: list[str], env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def fresh_start(tmp: Path, variables: dict) -> tuple[object, dict, dict]:
    """A fresh embedded installation (SQLite in its own data dir, no Redis) started as bin/run does."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env.update(variables)
    env.update({"GATEWAY_DATA_DIR": str(tmp / "data"), "DATABASE_URL": env.get("DATABASE_URL") or "",
                "REDIS_URL": env.get("REDIS_URL") or ""})  # fmt: skip
    outputs = {}
    for step in (["migrate", "--noinput", "-v0"], ["start_from_env"], ["bootstrap"]):
        done = manage(step, env)
        outputs[step[0]] = (done.stdout, done.stderr)
    return start_gateway(extra_env=env, tmp_dir=tmp), outputs, env


def sent(fake, path: str) -> dict:
    return [r for r in fake.requests if r["path"] == path][-1]


# --- claude-central-gateway: environment only ----------------------------------------------------------------


@pytest.fixture(scope="module")
def central(fake_upstream, tmp_path_factory):
    variables = read_env_file(SEEDS / "claude-central-gateway.env")
    variables.update(OPENAI_API_KEY=FAKE_KEY, OPENAI_BASE_URL=fake_upstream.openai_url)  # the fake, not OpenAI
    server, outputs, env = fresh_start(tmp_path_factory.mktemp("central"), variables)
    yield server, outputs, variables
    stop_gateway(server)


def test_claude_central_gateway_curl_example_with_gateway_token_and_model_map(central, fake_upstream):
    server, outputs, variables = central
    # its quick start's curl: x-api-key with GATEWAY_TOKEN, a Claude name that MODEL_MAP sends to gpt-4o
    answer = httpx.post(f"{server.url}/v1/messages", timeout=30, headers={"x-api-key": variables["GATEWAY_TOKEN"]},
                        json={"model": "claude-sonnet-4-20250514", "max_tokens": 100,
                              "messages": [{"role": "user", "content": "Say hello!"}]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["type"], body["role"], body["content"][0]["text"]) == ("message", "assistant", DEFAULT_TEXT)
    upstream = sent(fake_upstream, "/v1/chat/completions")
    assert upstream["body"]["model"] == "gpt-4o" and upstream["headers"]["authorization"] == f"Bearer {FAKE_KEY}"
    # Claude Code's way (ANTHROPIC_AUTH_TOKEN: Authorization: Bearer), streamed, through the SDK
    claude = anthropic.Anthropic(base_url=server.url, auth_token=variables["GATEWAY_TOKEN"], max_retries=0)
    with claude.messages.stream(model="claude-sonnet-4-20250514", max_tokens=50,
                                messages=[{"role": "user", "content": "SAY: streamed"}]) as stream:  # fmt: skip
        assert stream.get_final_text() == "streamed"
    stdout, _ = outputs["start_from_env"]
    assert "client key GATEWAY_TOKEN in project default" in stdout
    assert "  route claude-sonnet-4-20250514 -> openai, gpt-4o" in stdout
    assert "GATEWAY_TOKEN (claude-central-gateway) -> a client key" in stdout
    assert variables["GATEWAY_TOKEN"] not in stdout + outputs["start_from_env"][1]  # a secret is never printed
    refused = httpx.post(f"{server.url}/v1/messages", headers={"x-api-key": "not-the-token"}, timeout=30,
                         json={"model": "claude-sonnet-4-20250514", "max_tokens": 5, "messages": []})  # fmt: skip
    assert refused.status_code == 401


# --- the Coding Gateway: environment only --------------------------------------------------------------------


@pytest.fixture(scope="module")
def coding(fake_upstream, tmp_path_factory):
    variables = read_env_file(SEEDS / "coding-gateway.env")
    # the fake instead of api.anthropic.com: ANTHROPIC_BASE_URL is Gatehouse's own variable (not the seed's)
    variables.update(ANTHROPIC_API_KEY=FAKE_KEY, ANTHROPIC_BASE_URL=fake_upstream.url)
    server, outputs, env = fresh_start(tmp_path_factory.mktemp("coding"), variables)
    yield server, outputs, variables, env
    stop_gateway(server)


def test_coding_gateway_sdk_example_and_its_model_names(coding, fake_upstream):
    server, _, variables, _ = coding
    # its README's OpenAI SDK example, base_url ending in /v1
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=variables["GATEWAY_API_KEY"], max_retries=0)
    response = client.chat.completions.create(model="claude-sonnet-4-0",
                                              messages=[{"role": "user", "content": "Hello!"}])  # fmt: skip
    assert response.choices[0].message.content == DEFAULT_TEXT
    upstream = sent(fake_upstream, "/v1/messages")
    assert upstream["body"]["model"] == "claude-sonnet-4-0" and upstream["headers"]["x-api-key"] == FAKE_KEY
    assert upstream["body"]["max_tokens"] == 1200  # DEFAULT_MAX_TOKENS, read by the server at start (a setting)
    for model, expected in (("MYMODEL:sonnet", "claude-sonnet-4-0"), ("MYMODEL-opus", "claude-opus-4-5"),
                            ("opus", "claude-opus-4-5"), ("gpt-4o", "claude-sonnet-4-0")):  # fmt: skip
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "SAY: x"}])
        assert sent(fake_upstream, "/v1/messages")["body"]["model"] == expected, model
    # ENFORCE_DIFF_FIRST=1 became the project's diff-first instruction
    assert "diff" in json.dumps(sent(fake_upstream, "/v1/messages")["body"].get("system", "")).lower()


def test_coding_gateway_start_names_each_variable_once_and_warns_once(coding):
    _, outputs, variables, _ = coding
    stdout, stderr = outputs["start_from_env"]
    warnings = [line for line in stderr.splitlines() if "without a counterpart" in line]
    assert len(warnings) == 1, stderr
    named = warnings[0].split("them): ", 1)[1].split(". See", 1)[0].split(", ")
    assert sorted(named) == sorted(["FILE_HASH_CACHE_TTL", "ORIGIN_SECRET", "REQUIRE_CF_ACCESS_HEADERS",
                                    "ENABLE_PLUGIN_TOOLS", "EMBEDDING_API_URL", "EMBEDDING_MODEL"])  # fmt: skip
    used = [line for line in stdout.splitlines() if " -> " in line and line.startswith("  ") and "(" in line]
    for name in ("DEFAULT_MODEL", "RATE_LIMIT_RPM", "CIRCUIT_BREAKER_THRESHOLD", "STRIP_IDE_BOILERPLATE",
                 "ADMIN_API_KEY", "ENABLE_SMART_ROUTING", "UPSTREAM_TIMEOUT_SECONDS"):  # fmt: skip
        assert sum(line.split("=")[0].split(" (")[0].strip() == name for line in used) == 1, name
    for secret in ("GATEWAY_API_KEY", "ADMIN_API_KEY", "ORIGIN_SECRET"):
        assert variables[secret] not in stdout + stderr
    assert "project default: rpm=60" in stdout and "optimize.strip_boilerplate=True" in stdout


def test_coding_gateway_reliability_variables_become_settings(coding):
    _, _, _, env = coding
    env = {k: v for k, v in env.items() if not k.startswith("GATEWAY_") or k == "GATEWAY_DATA_DIR"}
    code = ("from django.conf import settings as s; print(s.GATEWAY_BREAKER_THRESHOLD, "
            "s.GATEWAY_BREAKER_COOLDOWN_SECONDS, s.GATEWAY_RETRY_MAX_ATTEMPTS, s.GATEWAY_RETRY_BASE_MS, "
            "s.GATEWAY_DEFAULT_MAX_TOKENS, s.GATEWAY_ADMIN_API_KEY == 'your-admin-api-key-0123')")  # fmt: skip
    assert manage(["shell", "-v0", "-c", code], env).stdout.split() == ["5", "60.0", "3", "1000", "1200", "True"]
    off = manage(["shell", "-v0", "-c", code], {**env, "CIRCUIT_BREAKER_ENABLED": "0", "RETRY_ENABLED": "0",
                                         "GATEWAY_RETRY_MAX_ATTEMPTS": "2"})  # fmt: skip
    assert off.stdout.split()[:3] == ["0", "60.0", "2"]  # Gatehouse's own name wins over RETRY_ENABLED=0


# --- LLM Gateway: config.yaml ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm(fake_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("llm")
    config = yaml.safe_load((SEEDS / "llm-gateway-config.yaml").read_text())
    for account in config["accounts"]:  # the only change: the fake as upstream (its later `base_url` field)
        account["base_url"] = fake_upstream.url
    config["accounts"][0]["api_key"] = FAKE_KEY
    config["accounts"][1]["status"] = "disabled"  # its example tokens are placeholders: kept, not used
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    server, outputs, env = fresh_start(tmp, {"GATEWAY_CONFIG": str(tmp / "config.yaml")})
    yield server, outputs, env, config
    stop_gateway(server)


def test_llm_gateway_config_yaml_serves_its_curl_examples(llm, fake_upstream):
    server, outputs, env, config = llm
    key = config["auth"]["api_keys"][0]
    headers = {"Authorization": f"Bearer {key}"}
    answer = httpx.post(f"{server.url}/v1/chat/completions", headers=headers, timeout=30,
                        json={"model": "claude-3-sonnet-20240229", "max_tokens": 100,
                              "messages": [{"role": "user", "content": "Hello!"}]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == DEFAULT_TEXT
    upstream = sent(fake_upstream, "/v1/messages")
    assert upstream["body"]["model"] == "claude-3-sonnet-20240229" and upstream["headers"]["x-api-key"] == FAKE_KEY
    native = httpx.post(f"{server.url}/v1/messages", timeout=30,
                        headers={"Authorization": f"Bearer {config['auth']['api_keys'][1]}"},
                        json={"model": "claude-3-sonnet-20240229", "system": "You are a helpful assistant.",
                              "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 100})  # fmt: skip
    assert native.status_code == 200 and native.json()["content"][0]["text"] == DEFAULT_TEXT
    accounts = {a["account"]: a for a in json.loads(manage(["list_accounts", "--json"], env).stdout)["accounts"]}
    assert set(accounts) == {"anthropic-api-1", "claude-code-oauth-1"}
    assert accounts["claude-code-oauth-1"]["enabled"] is False  # carried over with its tokens, as the file says
    assert "read as a llm-gateway configuration" in outputs["bootstrap"][1]


def test_llm_gateway_example_keys_sharing_a_prefix_are_refused_by_name(db, tmp_path):
    config = yaml.safe_load((SEEDS / "llm-gateway-config.yaml").read_text())
    config["auth"]["api_keys"] = ["gateway-key-12345", "gateway-key-67890"]  # its document's own pair
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(Exception, match="another key already starts with 'gateway-key'"):
        call_command("migrate_from", "llm-gateway", "--config", str(path), stdout=StringIO(), stderr=StringIO())
    from accounts.models import ApiKey

    assert not ApiKey.objects.filter(project__slug="llm-gateway").exists()  # nothing changed


def test_llm_gateway_cli_verbs_are_gatehouse_aliases(llm):
    _, _, env, _ = llm
    gatehouse = [str(Path(sys.executable).parent / "gatehouse")]
    added = subprocess.run([*gatehouse, "add-api-key", "--key=sk-ant-second-0123456789", "--name=second"], env=env,
                           capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    listed = subprocess.run([*gatehouse, "list-accounts", "--json"], env=env, capture_output=True, text=True,
                            timeout=120, cwd=ROOT)  # fmt: skip
    rows = {(a["provider"], a["account"]): a for a in json.loads(listed.stdout)["accounts"]}
    assert rows[("anthropic", "second")]["credential"].endswith("6789")
    started = subprocess.run([*gatehouse, "oauth-start", "--account-id=claude-code-oauth-1"], env=env,
                             capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert started.returncode == 0 and "oauth_finish" in started.stdout, started.stdout + started.stderr

    from accounts.seeds.llm_gateway import VERBS
    from gateway_site.cli import ALIASES, alias_argv

    assert set(ALIASES) == set(VERBS)
    samples = {"add-api-key": ["--key=k", "--name=n"], "add-oauth": ["--name=n"], "oauth-start": ["--account-id=a"],
               "oauth-callback": ["--account-id=a", "--code=c"]}  # fmt: skip
    for verb, (command, _, _) in VERBS.items():
        assert alias_argv([verb, *samples.get(verb, [])])[0] == command, verb
    assert alias_argv(["oauth-callback", "--code=C#S", "--account-id=x"]) == ["oauth_finish", "x", "C#S"]


# --- claude-proxy: config.json (and its /v1 rule) ------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(fake_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("claude-proxy")
    config = json.loads((SEEDS / "claude-proxy-config.json").read_text())
    provider = config["providers"][0]
    provider.update(base_url=fake_upstream.url, api_key=FAKE_KEY)  # as its README writes it: no /v1
    config["providers"].append({"name": "with-v1", "base_url": fake_upstream.openai_url, "api_key": FAKE_KEY,
                                "models": [{"id": "with-v1", "remote_id": "remote-with-v1"}]})  # ends in /v1
    (tmp / "config.json").write_text(json.dumps(config))
    server, outputs, env = fresh_start(tmp, {"GATEWAY_CONFIG": str(tmp / "config.json")})
    yield server, config
    stop_gateway(server)


def test_claude_proxy_config_json_serves_its_curl_examples_at_one_v1(proxy, fake_upstream):
    server, config = proxy
    headers = {"Authorization": f"Bearer {config['ak']}"}
    models = httpx.get(f"{server.url}/v1/models", headers=headers, timeout=30).json()
    assert {"glm", "minimax", "with-v1"} <= {m["id"] for m in models["data"]}
    for model, remote in (("glm", "deepseek-chat"), ("with-v1", "remote-with-v1")):
        answer = httpx.post(f"{server.url}/v1/messages", headers=headers, timeout=30,
                            json={"model": model, "max_tokens": 256,
                                  "messages": [{"role": "user", "content": "hello"}]})  # fmt: skip
        assert answer.status_code == 200, answer.text
        upstream = fake_upstream.requests[-1]
        # {base_url}/v1/chat/completions, and a base_url already ending in /v1 gets no second one
        assert (upstream["path"], upstream["body"]["model"]) == ("/v1/chat/completions", remote), model
    # its streaming example (curl -N), read as its Claude Code users' SDK reads it
    claude = anthropic.Anthropic(base_url=server.url, auth_token=config["ak"], max_retries=0)
    with claude.messages.stream(model="glm", max_tokens=256,
                                messages=[{"role": "user", "content": "SAY: streamed"}]) as stream:  # fmt: skip
        assert stream.get_final_text() == "streamed"


# --- migrate_from ----------------------------------------------------------------------------------------------


def test_migrate_from_dry_run_changes_nothing_and_the_run_makes_what_it_printed(db):
    from accounts.models import ApiKey, ModelRoute, Project, Provider

    before = snapshot()
    dry = StringIO()
    call_command("migrate_from", "coding-gateway", "--env-file", str(SEEDS / "coding-gateway.env"), "--dry-run",
                 stdout=dry, stderr=StringIO())  # fmt: skip
    printed = dry.getvalue()
    assert "From coding-gateway, Gatehouse will create or set:" in printed and "Dry run, nothing changed" in printed
    assert "  route MYMODEL:sonnet -> anthropic, claude-sonnet-4-0" in printed
    assert "setting GATEWAY_BREAKER_THRESHOLD=5" in printed and "setting GATEWAY_ADMIN_API_KEY=(secret)" in printed
    assert "ORIGIN_SECRET" in printed.split("Without a counterpart")[1]
    assert "your-gateway-api-key" not in printed and "your-admin-api-key-0123" not in printed
    assert snapshot() == before

    done = StringIO()
    call_command("migrate_from", "coding-gateway", "--env-file", str(SEEDS / "coding-gateway.env"), stdout=done,
                 stderr=StringIO())  # fmt: skip
    assert done.getvalue().split("Config applied")[0].split("Variables read:")[0] == printed.split("Variables read:")[0]
    routes = [line.split(" -> ")[0].removeprefix("  route ") for line in printed.splitlines()
              if line.startswith("  route ")]  # fmt: skip
    assert set(routes) <= set(ModelRoute.objects.values_list("alias", flat=True)) and len(routes) == 15
    provider = Provider.objects.get(name="anthropic")
    assert provider.read_timeout == 30 and provider.accounts.get().credential == "sk-ant-not-a-real-key"
    project = Project.objects.get(slug="default")
    opt = project.optimization
    assert (project.rpm_limit, opt.strip_boilerplate, opt.cap_tool_result_chars, opt.route_complex,
            opt.response_cache_ttl, opt.prune_max_tokens) == (60, True, 20000, "opus", 1800, None)  # fmt: skip
    assert ApiKey.objects.filter(project=project, name="GATEWAY_API_KEY").count() == 1


def test_migrate_from_llm_gateway_config_prints_then_creates_accounts_keys_and_strategy(db, tmp_path):
    from accounts.models import ApiKey, ModelRoute, ProviderAccount

    before = snapshot()
    path = SEEDS / "llm-gateway-config.yaml"
    dry = StringIO()
    call_command("migrate_from", "llm-gateway", "--config", str(path), "--dry-run", stdout=dry, stderr=StringIO())
    assert "  route claude-* -> anthropic, the model asked for [round_robin]" in dry.getvalue()
    assert "  oauth account anthropic/claude-code-oauth-1: tokens carried over" in dry.getvalue()
    assert snapshot() == before
    call_command("migrate_from", "llm-gateway", "--config", str(path), stdout=StringIO(), stderr=StringIO())
    assert ModelRoute.objects.get(alias="claude-*").strategy == "round_robin"
    oauth_account = ProviderAccount.objects.get(name="claude-code-oauth-1")
    assert (oauth_account.kind, oauth_account.credential) == ("anthropic_oauth", "xxxxxxxx")
    assert ProviderAccount.objects.get(name="anthropic-api-1").credential == "sk-ant-xxxxxxxx"
    assert ApiKey.objects.filter(project__slug="llm-gateway").count() == 2
    again = StringIO()
    call_command("migrate_from", "llm-gateway", "--config", str(path), stdout=again, stderr=StringIO())
    assert "0 created, 0 updated" in again.getvalue()  # idempotent


DEFAULT_TEXT = "Hello from the fake upstream."


def snapshot() -> dict:
    """Every configuration row, for "nothing changed" (the shared test database may hold other tests' rows)."""
    from accounts.models import ApiKey, ModelRoute, Project, ProjectOptimization, Provider, ProviderAccount

    return {m.__name__: sorted(map(str, m.objects.values_list()))
            for m in (ApiKey, ModelRoute, Project, ProjectOptimization, Provider, ProviderAccount)}
