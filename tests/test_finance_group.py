"""The Finance group (data migration accounts/0002): sees projects, keys, routes, prices and usage; changes nothing."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from accounts import keys
from accounts.models import ApiKey, ModelRoute, Project, Provider, ProviderAccount
from usage.models import ModelPrice, UsageRecord

pytestmark = pytest.mark.django_db

VISIBLE = ["accounts_project", "accounts_apikey", "accounts_modelroute", "usage_modelprice", "usage_usagerecord"]


@pytest.fixture
def data():
    project = Project.objects.create(slug="team", name="Team")
    key, _ = keys.key_create(project=project, name="laptop")
    provider = Provider.objects.create(name="p", kind="openai", base_url="https://api.openai.com/v1")
    ProviderAccount.objects.create(provider=provider, name="default")
    route = ModelRoute.objects.create(alias="sonnet")
    route.targets.create(provider=provider, remote_model="gpt-4o")
    price = ModelPrice.objects.create(model="gpt-4o", input_per_mtok=2, output_per_mtok=8)
    record = UsageRecord.objects.create(request_id="req_1", project=project, api_key=key, ingress_api="openai",
                                        http_status=200, outcome="ok")  # fmt: skip
    return {"accounts_project": project, "accounts_apikey": key, "accounts_modelroute": route,
            "usage_modelprice": price, "usage_usagerecord": record}  # fmt: skip


@pytest.fixture
def finance_client(client):
    user = User.objects.create_user("fin", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return client


def test_finance_group_has_only_view_permissions():
    codenames = set(Group.objects.get(name="Finance").permissions.values_list("codename", flat=True))
    assert {"view_project", "view_apikey", "view_modelprice", "view_usagerecord"} <= codenames
    assert all(c.startswith("view_") for c in codenames)
    assert "view_provideraccount" not in codenames


def test_finance_can_view_lists_and_details(finance_client, data):
    for name in VISIBLE:
        assert finance_client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name
        detail = finance_client.get(reverse(f"admin:{name}_change", args=[data[name].pk]))
        assert detail.status_code == 200, name
        assert b'name="_save"' not in detail.content, name
    project_page = finance_client.get(reverse("admin:accounts_project_change", args=[data["accounts_project"].pk]))
    assert data["accounts_apikey"].prefix.encode() in project_page.content


def test_finance_gets_403_on_add_and_change(finance_client, data):
    for name in VISIBLE:
        obj = data[name]
        assert finance_client.get(reverse(f"admin:{name}_add")).status_code == 403, name
        assert finance_client.post(reverse(f"admin:{name}_add"), {"name": "x", "slug": "x"}).status_code == 403, name
        change = reverse(f"admin:{name}_change", args=[obj.pk])
        assert finance_client.post(change, {"name": "changed", "slug": "changed"}).status_code == 403, name
        delete = reverse(f"admin:{name}_delete", args=[obj.pk])
        assert finance_client.get(delete).status_code == 403, name
        assert finance_client.post(delete, {"post": "yes"}).status_code == 403, name
    assert Project.objects.get().name == "Team"


def test_finance_cannot_run_actions(finance_client, data):
    key = data["accounts_apikey"]
    response = finance_client.post(reverse("admin:accounts_apikey_changelist"),
                                   {"action": "revoke", "_selected_action": [key.pk]})  # fmt: skip
    assert response.status_code in (200, 302)
    key.refresh_from_db()
    assert key.revoked_at is None
    project = data["accounts_project"]
    finance_client.post(reverse("admin:accounts_project_changelist"),
                        {"action": "delete_selected", "_selected_action": [project.pk], "post": "yes"})  # fmt: skip
    assert Project.objects.exists() and ApiKey.objects.exists()


def test_finance_cannot_see_providers_or_credentials(finance_client, data):
    assert finance_client.get(reverse("admin:accounts_provideraccount_changelist")).status_code == 403
    assert finance_client.get(reverse("admin:accounts_provider_changelist")).status_code == 403
