"""Operator commands: apply_config, create_api_key, revoke_api_key, check_providers, bootstrap."""

import json
import logging
import threading
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from textwrap import dedent

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from accounts import keys
from accounts.models import ApiKey, ModelRoute, Project, Provider, ProviderAccount, RouteTarget
from usage.models import ModelPrice

pytestmark = pytest.mark.django_db

OPENAI_SECRET = "sk-openai-test-0123456789"
ANTHROPIC_SECRET = "sk-ant-test-9876543210"

CONFIG = """
providers:
  - name: openai-main
    kind: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
  - name: anthropic-main
    kind: anthropic
    base_url: ${ANTHROPIC_BASE}
    read_timeout: 300
    extra_headers: {x-team: platform}
    accounts:
      - {name: primary, api_key_env: ANTHROPIC_API_KEY, weight: 2}
      - {name: backup, api_key_env: ANTHROPIC_API_KEY, priority: 1, enabled: false}
models:
  - alias: sonnet
    display_name: Claude Sonnet
    default_max_tokens: 8192
    max_output_tokens: 64000
    targets:
      - {provider: anthropic-main, model: claude-sonnet-4-5, priority: 0, weight: 1}
      - {provider: openai-main, model: gpt-4o, priority: 1}
  - alias: "gpt-*"
    targets: [{provider: openai-main, model: "*"}]
prices:
  - {model: claude-sonnet-4-5, input_per_mtok: 3, output_per_mtok: 15, cache_read_per_mtok: 0.3,
     cache_write_per_mtok: 3.75, effective_from: 2025-01-01}
  - {model: gpt-4o, input_per_mtok: 2.5, output_per_mtok: 10}
projects:
  - {slug: demo, name: Demo, rpm: 600, tpm: 100000, monthly_budget_usd: 50, allowed_models: [sonnet, "claude-*"]}
"""


@pytest.fixture(autouse=True)
def env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_SECRET)
    monkeypatch.setenv("ANTHROPIC_BASE", "https://api.anthropic.com")


@pytest.fixture
def write_config(tmp_path):
    def write(text: str):
        path = tmp_path / "gatehouse.yaml"
        path.write_text(dedent(text))
        return str(path)

    return write


def run(*args, **kwargs) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()


def db_state() -> dict:
    models = (Provider, ProviderAccount, ModelRoute, RouteTarget, ModelPrice, Project, ApiKey)
    state = {}
    for model in models:
        fields = [f.name for f in model._meta.concrete_fields]
        state[model.__name__] = [model_to_dict(o, fields=fields) for o in model.objects.order_by("pk")]
    return state


# --- apply_config -----------------------------------------------------------------------------------------


def test_apply_config_creates_everything(write_config):
    out, err = run("apply_config", write_config(CONFIG))

    assert "Config applied: 10 created, 0 updated, 0 unchanged." in out
    anthropic = Provider.objects.get(name="anthropic-main")
    assert (anthropic.kind, anthropic.base_url) == ("anthropic", "https://api.anthropic.com")
    assert anthropic.read_timeout == 300
    assert anthropic.extra_headers == {"x-team": "platform"}
    primary, backup = anthropic.accounts.get(name="primary"), anthropic.accounts.get(name="backup")
    assert primary.credential == ANTHROPIC_SECRET and primary.weight == 2
    assert primary.credential_last4 == "…3210"
    assert backup.priority == 1 and not backup.enabled
    assert ProviderAccount.objects.get(provider__name="openai-main", name="default").credential == OPENAI_SECRET
    sonnet = ModelRoute.objects.get(alias="sonnet")
    assert (sonnet.display_name, sonnet.default_max_tokens, sonnet.max_output_tokens) == ("Claude Sonnet", 8192, 64000)
    assert [str(t) for t in sonnet.targets.all()] == ["anthropic-main:claude-sonnet-4-5", "openai-main:gpt-4o"]
    price = ModelPrice.objects.get(model="claude-sonnet-4-5")
    assert price.cache_read_per_mtok == Decimal("0.3") and price.effective_from == date(2025, 1, 1)
    assert ModelPrice.objects.get(model="gpt-4o").effective_from == date.today()
    demo = Project.objects.get(slug="demo")
    assert (demo.rpm_limit, demo.tpm_limit, demo.monthly_budget_usd) == (600, 100000, Decimal("50"))
    assert demo.allowed_models == "sonnet, claude-*"
    assert OPENAI_SECRET not in out + err and ANTHROPIC_SECRET not in out + err


def test_apply_config_twice_changes_nothing(write_config):
    path = write_config(CONFIG)
    run("apply_config", path)
    before = db_state()

    out, _ = run("apply_config", path)

    assert "Config applied: 0 created, 0 updated, 10 unchanged." in out
    assert db_state() == before


def test_apply_config_updates_what_changed_and_replaces_targets(write_config):
    run("apply_config", write_config(CONFIG))
    changed = CONFIG.replace("rpm: 600", "rpm: 60").replace(
        "      - {provider: openai-main, model: gpt-4o, priority: 1}\n", ""
    )

    out, _ = run("apply_config", write_config(changed))

    assert "Config applied: 0 created, 2 updated, 8 unchanged." in out
    assert Project.objects.get(slug="demo").rpm_limit == 60
    targets = ModelRoute.objects.get(alias="sonnet").targets.all()
    assert [str(t) for t in targets] == ["anthropic-main:claude-sonnet-4-5"]


def test_apply_config_changed_credential_is_updated(write_config, monkeypatch):
    path = write_config(CONFIG)
    run("apply_config", path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-rotated-key-5555")

    out, _ = run("apply_config", path)

    assert "accounts   0 created, 1 updated, 2 unchanged" in out
    assert ProviderAccount.objects.get(name="default").credential == "sk-rotated-key-5555"


def test_apply_config_leaves_objects_not_in_the_file_alone(write_config):
    Project.objects.create(slug="other", name="Other")
    run("apply_config", write_config(CONFIG))
    assert Project.objects.filter(slug="other").exists()


def test_apply_config_warns_on_literal_api_key_without_printing_it(write_config):
    out, err = run(
        "apply_config",
        write_config("""
        providers:
          - {name: local, kind: openai, base_url: "http://127.0.0.1:8001/v1", api_key: sk-literal-secret-42}
        """),
    )
    assert "providers[0].api_key: a credential written in the file" in err
    assert "sk-literal-secret-42" not in out + err
    assert ProviderAccount.objects.get(provider__name="local").credential == "sk-literal-secret-42"


# Each bad file also holds valid changes (a renamed project, a new provider), so a partial write would show.
VALID_PART = """
providers:
  - {name: brand-new, kind: openai, base_url: "https://example.test/v1"}
projects:
  - {slug: demo, name: Renamed, rpm: 1}
"""
BAD_CONFIGS = [
    ("unknown top-level field", "modles: []", "modles: unknown field"),
    (
        "unknown nested field",
        "models:\n  - alias: x\n    targets: [{provider: openai-main, model: m, wieght: 1}]",
        "models[0].targets[0].wieght: unknown field",
    ),
    ("wrong type", "prices:\n  - {model: m, input_per_mtok: lots}", "prices[0].input_per_mtok: expected a number"),
    ("wrong type for a list", "models: sonnet", "models: expected a list"),
    (
        "unknown provider",
        "models:\n  - alias: a\n    targets: [{provider: brand-new, model: m}]\n"
        "  - alias: b\n    targets: [{provider: nope, model: m}]",
        "models[1].targets[0].provider: unknown provider 'nope'",
    ),
    (
        "missing env var",
        "models:\n  - {alias: '${GATEHOUSE_UNSET_VAR}', targets: []}",
        "models[0].alias: environment variable GATEHOUSE_UNSET_VAR is not set",
    ),
    ("yaml syntax error", "models: [\n  - alias: x", "YAML syntax error at line"),
    ("duplicate alias", "models:\n  - {alias: a, targets: []}\n  - {alias: a, targets: []}", "models[1].alias: dup"),
    ("bad price", "prices:\n  - {model: m, input_per_mtok: 0.0000001}", "prices[0].input_per_mtok: Ensure that there are no more than 6 decimal places"),
    ("bad date", "prices:\n  - {model: m, effective_from: soon}", "prices[0].effective_from: expected a date"),
    ("half a long-context tier", "prices:\n  - {model: m, long_context_threshold: 200000, long_input_per_mtok: 6}",
     "prices[0].long_output_per_mtok: required when long_context_threshold is set"),
    # found only while writing (by the model's own validation), after other rows were written: rolled back
    (
        "too many digits for the column",
        "models:\n  - {alias: fine, targets: []}\nprices:\n  - {model: m, input_per_mtok: 12345678}",
        "prices[0].input_per_mtok: Ensure that there are no more than 6 digits before the decimal point.",
    ),
]


@pytest.mark.parametrize("case, text, message", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_apply_config_rejects_bad_file_naming_the_field_and_changes_nothing(write_config, case, text, message):
    run("apply_config", write_config(CONFIG))
    before = db_state()

    with pytest.raises(CommandError) as raised:
        run("apply_config", write_config(VALID_PART + text))

    assert message in str(raised.value)
    assert "nothing changed" in str(raised.value)
    assert db_state() == before


@pytest.mark.parametrize(
    "provider, message",
    [
        ("{name: p, kind: gemini, base_url: 'https://x.test'}", "providers[1].kind: invalid kind 'gemini'"),
        (
            "{name: p, kind: openai, base_url: 'https://x.test/v1', api_key_env: GATEHOUSE_UNSET_VAR}",
            "providers[1].api_key_env: environment variable GATEHOUSE_UNSET_VAR is not set",
        ),
        ("{name: p, kind: openai, base_url: '${GATEHOUSE_UNSET_URL}'}", "providers[1].base_url: environment variable"),
        ("{name: p, kind: openai, base_url: 'https://x.test', connect_timeout: soon}", "providers[1].connect_timeout"),
        ("{name: p, kind: openai, base_url: 'https://x.test', accounts: [{name: a, weight: -1}]}",
         "providers[1].accounts[0].weight: Ensure this value is greater than or equal to 0"),
        ("{name: 'bad name', kind: openai, base_url: 'https://x.test'}", "providers[1].name: 'bad name'"),
    ],
)
def test_apply_config_rejects_bad_provider(write_config, provider, message):
    run("apply_config", write_config(CONFIG))
    before = db_state()
    text = VALID_PART.replace("projects:", f"  - {provider}\nprojects:")
    with pytest.raises(CommandError) as raised:
        run("apply_config", write_config(text))
    assert message in str(raised.value)
    assert db_state() == before


def test_apply_config_reports_every_problem_at_once(write_config):
    text = "providers:\n  - {name: p, kind: nope, base_url: 'ftp://x', colour: red}\nprojects:\n  - {slug: 'a b'}"
    with pytest.raises(CommandError) as raised:
        run("apply_config", write_config(text))
    message = str(raised.value)
    for expected in ("providers[0].colour: unknown field", "providers[0].kind: invalid kind", "providers[0].base_url",
                     "projects[0].slug"):  # fmt: skip
        assert expected in message


def test_apply_config_missing_file_fails(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run("apply_config", str(tmp_path / "absent.yaml"))


def test_apply_config_price_without_date_is_not_duplicated_on_a_later_day(write_config):
    ModelPrice.objects.create(model="gpt-4o", input_per_mtok=Decimal("2.5"), output_per_mtok=10,
                              effective_from=date.today() - timedelta(days=30))  # fmt: skip
    out, _ = run("apply_config", write_config("prices:\n  - {model: gpt-4o, input_per_mtok: 2.5, output_per_mtok: 10}"))
    assert "0 created, 0 updated, 1 unchanged" in out
    assert ModelPrice.objects.filter(model="gpt-4o").count() == 1


# --- create_api_key / revoke_api_key ----------------------------------------------------------------------


@pytest.fixture
def project():
    return Project.objects.create(slug="team", name="Team")


def test_create_api_key_prints_secret_alone_on_last_line(project):
    out, _ = run("create_api_key", "team", "--name", "ci-bot", "--expires-days", "30")

    secret = out.splitlines()[-1]
    assert secret.startswith("gh_") and len(secret) == 51 and " " not in secret
    key = keys.key_find(secret)
    assert key is not None and key.name == "ci-bot" and key.project == project
    assert key.expires_at is not None
    assert key.digest == keys.digest(secret)


def test_create_api_key_never_stores_the_secret(project):
    out, _ = run("create_api_key", "team", "--name", "ci-bot")
    secret = out.splitlines()[-1]
    stored = json.dumps(list(ApiKey.objects.values()), default=str)
    assert secret not in stored
    assert secret[:11] in stored  # the prefix is


def test_create_api_key_unknown_project_fails(project):
    with pytest.raises(CommandError, match="no project 'nope'.*team"):
        run("create_api_key", "nope", "--name", "x")


def test_revoke_api_key_by_prefix(project):
    key, secret = keys.key_create(project=project, name="k")
    out, _ = run("revoke_api_key", key.prefix)
    key.refresh_from_db()
    assert key.status == "revoked" and "Revoked key" in out


def test_revoke_api_key_by_full_secret(project):
    key, secret = keys.key_create(project=project, name="k")
    run("revoke_api_key", secret)
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_revoke_api_key_not_found_fails(project):
    key, secret = keys.key_create(project=project, name="k")
    with pytest.raises(CommandError, match="no such key"):
        run("revoke_api_key", "gh_nothere1")
    with pytest.raises(CommandError, match="no such key"):  # right prefix, wrong secret
        run("revoke_api_key", secret[:-1] + ("a" if secret[-1] != "a" else "b"))
    key.refresh_from_db()
    assert key.revoked_at is None


def test_key_commands_never_log_the_secret(project, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")  # Django's own default is INFO
    with CaptureQueriesContext(connection):  # SQL and its parameters are logged too, as with DEBUG=True
        out, _ = run("create_api_key", "team", "--name", "k")
        secret = out.splitlines()[-1]
        run("revoke_api_key", secret)
    assert any(r.name == "django.db.backends" for r in caplog.records)
    assert not [r for r in caplog.records if secret in r.getMessage() or secret in str(r.args)]


# --- check_providers --------------------------------------------------------------------------------------


@contextmanager
def fake_models_server():
    """A tiny upstream on 127.0.0.1: /v1/models answers 200 for the good credentials, 401 otherwise."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, dict(self.headers)))
            good = self.headers.get("authorization") == "Bearer sk-good-openai-1" or (
                self.headers.get("x-api-key") == "sk-good-anthropic-2"
                and self.headers.get("anthropic-version") == "2023-06-01"
            )
            ok = self.path == "/v1/models" and good
            body = {"data": [{"id": "m1"}, {"id": "m2"}]} if ok else {"error": {"message": "invalid api key"}}
            payload = json.dumps(body).encode()
            self.send_response(200 if ok else 401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def make_account(provider_name, kind, base_url, credential, name="default"):
    provider, _ = Provider.objects.get_or_create(name=provider_name, defaults={"kind": kind, "base_url": base_url})
    account = ProviderAccount(provider=provider, name=name)
    account.set_credential(credential)
    account.save()
    return account


@pytest.fixture
def models_server():
    with fake_models_server() as server:
        yield server


def test_check_providers_all_ok(models_server):
    url, seen = models_server
    make_account("openai-local", "openai", url + "/v1", "sk-good-openai-1")
    make_account("anthropic-local", "anthropic", url, "sk-good-anthropic-2")

    out, _ = run("check_providers")

    assert "All 2 account(s) OK." in out
    assert {path for path, _ in seen} == {"/v1/models"}
    assert "2 models" in out


def test_check_providers_reports_failure_with_table_and_nonzero_exit(models_server):
    url, _ = models_server
    good = make_account("openai-local", "openai", url + "/v1", "sk-good-openai-1")
    bad = make_account("anthropic-local", "anthropic", url, "sk-wrong-anthropic-3")
    ProviderAccount.objects.filter(pk=good.pk).update(last_error="old failure")
    out = StringIO()

    with pytest.raises(CommandError, match="1 of 2 account"):
        call_command("check_providers", stdout=out, stderr=StringIO())

    lines = out.getvalue().splitlines()
    assert lines[0].split()[:6] == ["PROVIDER", "ACCOUNT", "KIND", "STATUS", "LATENCY_MS", "DETAIL"]
    ok_row = next(line for line in lines if line.startswith("openai-local"))
    bad_row = next(line for line in lines if "anthropic-local" in line)
    assert "ok" in ok_row.split() and "FAILED" in bad_row and "HTTP 401: invalid api key" in bad_row
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.last_error == "HTTP 401: invalid api key" and bad.last_error_at is not None
    assert good.last_error == "" and good.last_error_at is None
    assert "sk-wrong-anthropic-3" not in out.getvalue()


def test_check_providers_unreachable_upstream_fails_fast():
    make_account("nowhere", "openai", "http://127.0.0.1:9/v1", "sk-x-12345678")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("check_providers", "--timeout", "2", stdout=out, stderr=StringIO())
    assert "ConnectError" in out.getvalue()


def test_check_providers_skips_disabled_accounts(models_server):
    url, seen = models_server
    account = make_account("openai-local", "openai", url + "/v1", "sk-bad")
    ProviderAccount.objects.filter(pk=account.pk).update(enabled=False)
    out, _ = run("check_providers")
    assert "No enabled provider accounts" in out and not seen


# --- bootstrap --------------------------------------------------------------------------------------------


def test_bootstrap_first_run_creates_admin_demo_project_and_key(monkeypatch, settings):
    monkeypatch.delenv("GATEWAY_ADMIN_USER", raising=False)
    monkeypatch.delenv("GATEWAY_ADMIN_PASSWORD", raising=False)
    settings.GATEWAY_CONFIG = ""

    out, _ = run("bootstrap")

    password = next(line for line in out.splitlines() if "password" in line).rsplit(" ", 1)[1]
    assert authenticate(username="admin", password=password).is_superuser
    secret = next(line for line in out.splitlines() if line.startswith("gh_"))
    assert keys.key_find(secret).project.slug == "demo"
    assert "No model route exists yet" in out and "apply_config" in out


def test_bootstrap_is_idempotent_and_prints_secrets_only_once(monkeypatch, settings):
    monkeypatch.setenv("GATEWAY_ADMIN_USER", "root")
    monkeypatch.setenv("GATEWAY_ADMIN_PASSWORD", "correct horse battery")
    settings.GATEWAY_CONFIG = ""
    first, _ = run("bootstrap")

    second, _ = run("bootstrap")

    assert authenticate(username="root", password="correct horse battery").is_superuser
    assert "correct horse battery" not in first
    assert "gh_" in first and "gh_" not in second and "password" not in second
    assert get_user_model().objects.count() == 1 and ApiKey.objects.count() == 1


def test_bootstrap_applies_gateway_config(write_config, settings):
    settings.GATEWAY_CONFIG = write_config(CONFIG)
    out, _ = run("bootstrap")
    assert "Config applied: 9 created, 1 updated, 0 unchanged." in out  # demo project made first, then updated
    assert "No model route" not in out
    assert Project.objects.get(slug="demo").rpm_limit == 600


def test_bootstrap_with_bad_config_fails(write_config, settings):
    settings.GATEWAY_CONFIG = write_config("models: 3")
    with pytest.raises(CommandError, match="models: expected a list"):
        run("bootstrap")
