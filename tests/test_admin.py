"""Admin console, as a superuser sees it: every page renders, keys are shown once, credentials are write-only,
the ledger is read-only and never COUNTs its whole table."""

import logging
import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, ModelRoute, Project, Provider, ProviderAccount, RouteTarget
from tests.test_commands import fake_models_server
from usage.admin import LedgerPaginator
from usage.models import ModelPrice, UsageRecord

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r"gh_[A-Za-z0-9]{48}")


@pytest.fixture
def sample():
    """One of everything, so list columns and change pages have something to render."""
    project = Project.objects.create(slug="team", name="Team", rpm_limit=60)
    key, secret = keys.key_create(project=project, name="laptop")
    provider = Provider.objects.create(name="anthropic-main", kind="anthropic", base_url="https://api.anthropic.com")
    account = ProviderAccount(provider=provider, name="default")
    account.set_credential("sk-ant-sample-credential-9999")
    account.save()
    route = ModelRoute.objects.create(alias="sonnet")
    target = RouteTarget.objects.create(route=route, provider=provider, remote_model="claude-sonnet-4-5")
    price = ModelPrice.objects.create(model="claude-sonnet-4-5", input_per_mtok=3, output_per_mtok=15)
    record = UsageRecord.objects.create(
        request_id="req_1", project=project, api_key=key, alias="sonnet", provider="anthropic-main",
        account="default", remote_model="claude-sonnet-4-5", ingress_api="anthropic", http_status=200, outcome="ok",
        input_tokens=10, output_tokens=5, cost_usd="0.000105",
    )  # fmt: skip
    return {"project": project, "key": key, "provider": provider, "account": account, "route": route,
            "target": target, "price": price, "record": record}  # fmt: skip


def url(name, *args, **query):
    path = reverse(f"admin:{name}", args=args)
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def changelist_url(obj_or_model):
    meta = obj_or_model._meta
    return url(f"{meta.app_label}_{meta.model_name}_changelist")


def test_every_changelist_add_and_change_page_renders(admin_client, sample):
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        response = admin_client.get(changelist_url(model))
        assert response.status_code == 200, meta.label
        add = admin_client.get(url(f"{meta.app_label}_{meta.model_name}_add"))
        assert add.status_code == (200 if model_admin.has_add_permission(add.wsgi_request) else 403), meta.label
    for obj in sample.values():
        meta = obj._meta
        response = admin_client.get(url(f"{meta.app_label}_{meta.model_name}_change", obj.pk))
        assert response.status_code == 200, meta.label


def test_admin_is_branded_gatehouse(admin_client):
    response = admin_client.get("/admin/")
    assert b"Gatehouse" in response.content


def test_changelists_search_filter_and_drill_down(admin_client, sample):
    year = timezone.now().year
    for path in [
        url("accounts_apikey_changelist", q="lap", status="active"),
        url("accounts_apikey_changelist", status="revoked"),
        url("accounts_apikey_changelist", status="expired"),
        url("accounts_project_changelist", q="team", created_at__year=year),
        url("accounts_provideraccount_changelist", q="default", enabled__exact=1),
        url("accounts_modelroute_changelist", q="claude"),
        url("usage_modelprice_changelist", q="sonnet"),
        url("usage_usagerecord_changelist", q="req_1", outcome__exact="ok", ingress_api="anthropic"),
        url("usage_usagerecord_changelist", provider="anthropic-main", stream__exact=0, created_at__year=year),
    ]:
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert "?e=1" not in response.get("Location", ""), path
    found = admin_client.get(url("accounts_apikey_changelist", status="active"))
    assert sample["key"].prefix.encode() in found.content
    revoked = admin_client.get(url("accounts_apikey_changelist", status="revoked"))
    assert sample["key"].prefix.encode() not in revoked.content


def test_the_request_list_finds_a_claude_code_session(admin_client, sample):
    """A session id in the search box lists that session's requests (the ledger's session_id, proxy.core)."""
    session = "014150c5-e2da-4d40-87f9-b85ad636bebb"
    fields = {f: getattr(sample["record"], f) for f in ("project", "api_key", "http_status", "outcome")}
    UsageRecord.objects.create(request_id="req_in_session", session_id=session, ingress_api="bedrock", **fields)
    listed = admin_client.get(url("usage_usagerecord_changelist", q=session)).content
    assert b"req_in_session" in listed and b"req_1<" not in listed
    assert b"req_1<" in admin_client.get(url("usage_usagerecord_changelist")).content  # listed without the search
    by_ingress = admin_client.get(url("usage_usagerecord_changelist", ingress_api="bedrock")).content
    assert b"req_in_session" in by_ingress and b"req_1<" not in by_ingress


# --- API keys ---------------------------------------------------------------------------------------------


def key_form(project, **extra):
    return {"project": project.pk, "name": "ci-bot", "expires_at_0": "", "expires_at_1": "", "allowed_models": "",
            "rpm_limit": "", "tpm_limit": "", **extra}  # fmt: skip


def test_key_creation_shows_secret_once_then_only_prefix(admin_client, sample, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    project = sample["project"]
    with CaptureQueriesContext(connection):  # SQL is logged with its parameters, as under DEBUG=True
        created = admin_client.post(url("accounts_apikey_add"), key_form(project, rpm_limit="30"))
        assert created.status_code == 302 and not SECRET_RE.search(created.content.decode())  # post/redirect/get
        response = admin_client.get(created["Location"])
        assert response.status_code == 200
        html = response.content.decode()
        assert "This is the only time the key is shown" in html
        (secret,) = set(SECRET_RE.findall(html))
        key = ApiKey.objects.get(name="ci-bot")
        assert key.digest == keys.digest(secret) and key.prefix == secret[:11] and key.rpm_limit == 30
        assert "no-store" in response["Cache-Control"]

        pages = [url("accounts_apikey_change", key.pk), url("accounts_apikey_changelist"),
                 url("accounts_project_change", project.pk), "/admin/", created["Location"]]  # fmt: skip
        again = [admin_client.get(page) for page in pages]
    for page in again:
        assert page.status_code == 200
        assert secret not in page.content.decode()
    assert key.prefix in again[0].content.decode()
    stored = str(list(ApiKey.objects.values())) + str(admin_client.session.items())
    assert secret not in stored
    assert any(r.name == "django.db.backends" for r in caplog.records)
    leaked = [r for r in caplog.records if secret in f"{r.getMessage()} {r.args} {r.exc_info} {r.exc_text}"]
    assert not leaked


def test_key_add_form_asks_for_project_name_expiry_models_and_limits(admin_client, sample):
    response = admin_client.get(url("accounts_apikey_add", project=sample["project"].pk))
    form = response.context["adminform"].form
    assert list(form.fields) == ["project", "name", "expires_at", "allowed_models", "rpm_limit", "tpm_limit",
                                 "max_concurrent", "monthly_budget_usd", "daily_budget_usd"]  # fmt: skip
    assert form.initial["project"] == str(sample["project"].pk)


def test_project_page_lists_keys_and_links_to_key_creation(admin_client, sample):
    html = admin_client.get(url("accounts_project_change", sample["project"].pk)).content.decode()
    assert url("accounts_apikey_add", project=sample["project"].pk) in html
    assert sample["key"].prefix in html and ">active<" in html


def test_key_status_column_is_readable(admin_client, sample):
    project = sample["project"]
    revoked, _ = keys.key_create(project=project, name="old")
    keys.key_revoke(revoked)
    expired, _ = keys.key_create(project=project, name="gone", expires_days=1)
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    html = admin_client.get(url("accounts_apikey_changelist")).content.decode()
    for status in ("active", "revoked", "expired"):
        assert f">{status}</b>" in html


def test_revoke_action_revokes_selected_keys(admin_client, sample):
    other, _ = keys.key_create(project=sample["project"], name="other")
    kept, _ = keys.key_create(project=sample["project"], name="kept")
    response = admin_client.post(
        url("accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [sample["key"].pk, other.pk]},
        follow=True,
    )
    assert "Revoked 2 key(s)" in response.content.decode()
    revoked = ApiKey.objects.filter(project=sample["project"], revoked_at__isnull=False).values_list("pk", flat=True)
    assert set(revoked) == {sample["key"].pk, other.pk}
    kept.refresh_from_db()
    assert kept.status == "active"


# --- providers --------------------------------------------------------------------------------------------


def account_form(account, credential=""):
    return {"provider": account.provider_id, "name": account.name, "credential": credential, "weight": 1,
            "priority": 0, "enabled": "on", "cooldown_until_0": "", "cooldown_until_1": ""}  # fmt: skip


def test_credential_is_write_only(admin_client, sample):
    account = sample["account"]
    change = url("accounts_provideraccount_change", account.pk)

    response = admin_client.post(change, account_form(account, "sk-ant-new-secret-value-4321"))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.credential == "sk-ant-new-secret-value-4321"
    html = admin_client.get(change).content.decode()
    assert "sk-ant-new-secret-value-4321" not in html
    assert account.credential_encrypted not in html
    assert account.credential_encrypted[:20] not in html
    assert "…4321" in html
    provider_html = admin_client.get(url("accounts_provider_change", account.provider_id)).content.decode()
    assert "sk-ant-new-secret-value-4321" not in provider_html and account.credential_encrypted not in provider_html

    admin_client.post(change, account_form(account, ""))  # empty keeps the current credential
    account.refresh_from_db()
    assert account.credential == "sk-ant-new-secret-value-4321"


def test_provider_page_adds_accounts_inline_with_credential(admin_client):
    response = admin_client.post(
        url("accounts_provider_add"),
        {
            "name": "openai-main", "kind": "openai", "base_url": "https://api.openai.com/v1", "connect_timeout": 10,
            "read_timeout": 600, "extra_headers": "{}", "enabled": "on",
            "accounts-TOTAL_FORMS": 1, "accounts-INITIAL_FORMS": 0, "accounts-MIN_NUM_FORMS": 0,
            "accounts-MAX_NUM_FORMS": 1000, "accounts-0-name": "default", "accounts-0-credential": "sk-inline-12345678",
            "accounts-0-weight": 1, "accounts-0-priority": 0, "accounts-0-enabled": "on",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    account = ProviderAccount.objects.get(provider__name="openai-main")
    assert account.credential == "sk-inline-12345678" and account.credential_last4 == "…5678"


def test_enable_and_disable_actions(admin_client, sample):
    account = sample["account"]
    changelist = url("accounts_provideraccount_changelist")
    admin_client.post(changelist, {"action": "disable", "_selected_action": [account.pk]})
    account.refresh_from_db()
    assert not account.enabled
    admin_client.post(changelist, {"action": "enable", "_selected_action": [account.pk]})
    account.refresh_from_db()
    assert account.enabled


def test_test_connection_action_reports_each_account(admin_client, sample):
    with fake_models_server() as (base, seen):
        provider = Provider.objects.create(name="local", kind="openai", base_url=base + "/v1")
        good = ProviderAccount(provider=provider, name="good")
        good.set_credential("sk-good-openai-1")
        good.save()
        bad = ProviderAccount(provider=provider, name="bad")
        bad.set_credential("sk-bad-openai-0")
        bad.save()
        response = admin_client.post(
            url("accounts_provideraccount_changelist"),
            {"action": "test_connection", "_selected_action": [good.pk, bad.pk]},
            follow=True,
        )
    html = response.content.decode().lower()  # messages are shown capitalised
    assert "local/good: ok in" in html and "2 models" in html
    assert "local/bad: failed in" in html and "http 401: invalid api key" in html
    assert [headers.get("authorization") for _, headers in seen].count("Bearer sk-good-openai-1") == 1
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.last_error == "HTTP 401: invalid api key" and bad.last_error_at
    assert good.last_error == ""


def test_the_provider_page_tests_each_of_its_accounts(admin_client, sample):
    """The button on the provider's own page (README, Admin console) runs the accounts' check, not a second one."""
    with fake_models_server() as (base, seen):
        provider = Provider.objects.create(name="local", kind="openai", base_url=base + "/v1")
        for name, secret in (("good", "sk-good-openai-1"), ("bad", "sk-bad-openai-0")):
            account = ProviderAccount(provider=provider, name=name)
            account.set_credential(secret)
            account.save()
        page = admin_client.get(url("accounts_provider_change", provider.pk)).content.decode()
        button = url("accounts_provider_test_connection", provider.pk)
        assert f'action="{button}"' in page and 'id="test-connection"' in page
        assert admin_client.get(button).status_code == 302 and not seen  # a GET probes nothing
        response = admin_client.post(button, follow=True)
    html = response.content.decode().lower()
    assert response.redirect_chain[-1][0] == url("accounts_provider_change", provider.pk)
    assert "local/good: ok in" in html and "local/bad: failed in" in html and "http 401: invalid api key" in html
    assert ProviderAccount.objects.get(provider=provider, name="bad").last_error == "HTTP 401: invalid api key"
    listing = admin_client.get(url("accounts_provider_changelist")).content.decode()
    assert "2 of 2 accounts healthy" in listing and "bad: HTTP 401: invalid api key" in listing  # the health column


def test_an_account_cooling_down_by_hand_is_not_shown_as_healthy(admin_client, sample):
    from datetime import timedelta

    from django.utils import timezone

    account = sample["account"]
    account.cooldown_until = timezone.now() + timedelta(minutes=30)
    account.save()
    listing = admin_client.get(url("accounts_provideraccount_changelist")).content.decode()
    assert f"cooling down</b> until {account.cooldown_until:%H:%M} UTC" in listing
    providers = admin_client.get(url("accounts_provider_changelist")).content.decode()
    assert "down</b> · 0 of 1 accounts healthy" in providers and "default: cooling down until" in providers


# --- routes -----------------------------------------------------------------------------------------------


def test_model_route_edits_targets_inline(admin_client, sample):
    route, target = sample["route"], sample["target"]
    response = admin_client.post(
        url("accounts_modelroute_change", route.pk),
        {
            "alias": "sonnet", "display_name": "Sonnet", "enabled": "on", "default_max_tokens": "",
            "max_output_tokens": "", "strategy": "priority",
            "targets-TOTAL_FORMS": 2, "targets-INITIAL_FORMS": 1, "targets-MIN_NUM_FORMS": 0,
            "targets-MAX_NUM_FORMS": 1000,
            "targets-0-id": target.pk, "targets-0-route": route.pk, "targets-0-provider": sample["provider"].pk,
            "targets-0-remote_model": "claude-sonnet-4-5", "targets-0-priority": 0, "targets-0-weight": 1,
            "targets-1-route": route.pk, "targets-1-provider": sample["provider"].pk,
            "targets-1-remote_model": "claude-sonnet-4", "targets-1-priority": 1, "targets-1-weight": 1,
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    targets = [str(t) for t in route.targets.all()]
    assert targets == ["anthropic-main:claude-sonnet-4-5", "anthropic-main:claude-sonnet-4"]
    assert "anthropic-main:claude-sonnet-4" in admin_client.get(url("accounts_modelroute_changelist")).content.decode()


def test_model_price_list_shows_model_prices_and_effective_from(admin_client, sample):
    html = admin_client.get(url("usage_modelprice_changelist")).content.decode()
    for text in ("claude-sonnet-4-5", "3.000000", "15.000000", "current", "column-effective_from"):
        assert text in html


# --- the ledger -------------------------------------------------------------------------------------------


def test_ledger_is_read_only_even_for_superuser(admin_client, sample):
    record = sample["record"]
    model_admin = admin.site._registry[UsageRecord]
    request = admin_client.get(changelist_url(UsageRecord)).wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, record)
    assert not model_admin.has_delete_permission(request, record)
    assert admin_client.get(url("usage_usagerecord_add")).status_code == 403
    assert admin_client.post(url("usage_usagerecord_add"), {"request_id": "x"}).status_code == 403
    assert admin_client.post(url("usage_usagerecord_change", record.pk), {"request_id": "x"}).status_code == 403
    assert admin_client.post(url("usage_usagerecord_delete", record.pk), {"post": "yes"}).status_code == 403
    admin_client.post(changelist_url(UsageRecord), {"action": "delete_selected", "_selected_action": [record.pk]})
    record.refresh_from_db()
    assert record.request_id == "req_1"
    view = admin_client.get(url("usage_usagerecord_change", record.pk)).content.decode()
    assert 'name="_save"' not in view and "req_1" in view


def full_counts(queries) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "usage_usagerecord" in q["sql"]]


@pytest.mark.parametrize(
    "query",
    [{}, {"created_at__year": "YEAR"}, {"q": "sonnet"}, {"outcome__exact": "ok", "p": 2}, {"_facets": "True"}],
    ids=["plain", "drill-down", "search", "filtered-page-2", "facets"],
)
def test_ledger_changelist_runs_no_full_count(admin_client, sample, query):
    UsageRecord.objects.bulk_create(
        UsageRecord(request_id=f"req_{i}", alias="sonnet", ingress_api="openai", http_status=200, outcome="ok",
                    created_at=timezone.now() - timedelta(days=400 * (i % 2)))  # fmt: skip
        for i in range(250)
    )
    query = {k: (timezone.now().year if v == "YEAR" else v) for k, v in query.items()}
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(url("usage_usagerecord_changelist", **query))
    assert response.status_code == 200
    assert "?e=1" not in response.get("Location", "")
    assert full_counts(captured.captured_queries) == []
    assert any("usage_usagerecord" in q["sql"] for q in captured.captured_queries)


def test_ledger_pages_beyond_the_cap_are_counted_no_further(admin_client, monkeypatch):
    monkeypatch.setattr(LedgerPaginator, "CAP", 150)
    UsageRecord.objects.bulk_create(
        UsageRecord(request_id=f"req_{i}", ingress_api="openai", http_status=200, outcome="ok") for i in range(250)
    )
    response = admin_client.get(url("usage_usagerecord_changelist"))
    assert response.context["cl"].result_count == 150
    assert response.context["cl"].paginator.num_pages == 2
