"""The audit trail: admin changes made through the real server (login, forms, bulk actions, deletes) and the
operator commands each leave AuditEvent rows with a field-level diff and never a secret value."""

import re
import secrets
from html.parser import HTMLParser

import httpx
import orjson
import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiKey, AuditEvent, ModelRoute, Project, Provider

CREDENTIAL = "sk-audit-credential-" + secrets.token_hex(8)


class _Form(HTMLParser):
    """The values a browser would submit from the page's form with id `form_id` (default: the first form)."""

    def __init__(self, form_id=None):
        super().__init__()
        self.form_id, self.inside, self.done = form_id, False, False
        self.values: dict[str, str] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and not self.done and (self.form_id is None or a.get("id") == self.form_id):
            self.inside = True
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.values[name] = a.get("value", "on" if a.get("type") == "checkbox" else "")
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and self.inside:
            self.inside, self.done = False, True


class Admin:
    """A staff member's browser session against the real server, without a browser: real login, real forms."""

    def __init__(self, url: str, username: str, password: str):
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=20)
        form = self.form("/admin/login/")
        response = self.post("/admin/login/?next=/admin/", {**form, "username": username, "password": password})
        assert response.status_code == 302, response.text[:500]

    def form(self, path: str, form_id=None) -> dict:
        page = self.http.get(path)
        assert page.status_code == 200, (path, page.status_code)
        parser = _Form(form_id)
        parser.feed(page.text)
        return parser.values

    def post(self, path: str, data: dict) -> httpx.Response:
        data = {**data, "csrfmiddlewaretoken": self.http.cookies["csrftoken"]}
        return self.http.post(path, data=data, headers={"Referer": str(self.http.base_url) + path})


@pytest.fixture
def staff_admin(gateway_server, committed):
    from django.contrib.auth.models import User

    password = secrets.token_urlsafe(16)
    user = User.objects.create_superuser(f"auditor-{secrets.token_hex(4)}", password=password)
    yield Admin(gateway_server.url, user.username, password), user
    user.delete()


def events(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


def no_secret_anywhere(*secrets_: str) -> None:
    dump = orjson.dumps(list(AuditEvent.objects.values())).decode()
    for value in secrets_:
        assert value not in dump
    for digest in ApiKey.objects.values_list("digest", flat=True):
        assert digest not in dump


def test_admin_changes_through_the_server_are_audited(staff_admin):
    admin, user = staff_admin
    slug = f"audit-{secrets.token_hex(3)}"
    project = Project.objects.create(slug=slug, name="Audited", monthly_budget_usd="10.00")

    form = admin.form(f"/admin/accounts/project/{project.pk}/change/", "project_form")
    form.update(monthly_budget_usd="25.00", rpm_limit="60")
    assert admin.post(f"/admin/accounts/project/{project.pk}/change/", form).status_code == 302

    (change,) = events(object_type="accounts.project", object_id=str(project.pk), action="change")
    assert (change.actor, change.user_id, change.source) == (user.username, user.pk, "admin")
    assert change.changes == {"monthly_budget_usd": ["10.00", "25.00"], "rpm_limit": [None, 60]}

    # a provider with an account and its credential, added in one form (an inline)
    form = admin.form("/admin/accounts/provider/add/", "provider_form")
    name = f"audit-{secrets.token_hex(3)}"
    form.update({"name": name, "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "accounts-TOTAL_FORMS": "1",
                 "accounts-0-name": "main", "accounts-0-credential": CREDENTIAL, "accounts-0-weight": "1",
                 "accounts-0-priority": "0", "accounts-0-enabled": "on"})  # fmt: skip
    response = admin.post("/admin/accounts/provider/add/", form)
    assert response.status_code == 302, re.findall(r'class="errorlist[^>]*>(.*?)</ul>', response.text)[:5]
    provider = Provider.objects.get(name=name)
    (added,) = events(object_type="accounts.provider", object_id=str(provider.pk))
    assert added.action == "add" and added.changes["base_url"] == [None, "http://127.0.0.1:9/v1"]
    (account,) = events(object_type="accounts.provideraccount", object_id=str(provider.accounts.get().pk))
    assert account.action == "add" and account.changes["credential_encrypted"] == ["", "[new secret]"]

    # a bulk action (no signals: reported by the service) and a delete
    route = ModelRoute.objects.create(alias=f"audit-{secrets.token_hex(3)}")
    data = {"action": "disable", "_selected_action": [str(route.pk)], "index": "0"}
    assert admin.post("/admin/accounts/modelroute/", data).status_code == 302
    (disabled,) = events(object_type="accounts.modelroute", object_id=str(route.pk))
    assert disabled.action == "change" and disabled.changes == {"enabled": [True, False]}
    assert admin.post(f"/admin/accounts/modelroute/{route.pk}/delete/", {"post": "yes"}).status_code == 302
    assert events(object_type="accounts.modelroute", object_id=str(route.pk), action="delete")

    # a price (the usage app's model)
    form = admin.form("/admin/usage/modelprice/add/", "modelprice_form")
    form.update(model=f"audit-model-{slug}", input_per_mtok="1.5", output_per_mtok="6")
    assert admin.post("/admin/usage/modelprice/add/", form).status_code == 302
    (price,) = events(object_type="usage.modelprice", action="add", object_repr__contains=slug)
    assert price.changes["input_per_mtok"][1] == "1.500000" or price.changes["input_per_mtok"][1].startswith("1.5")

    no_secret_anywhere(CREDENTIAL)
    # and the trail is listed, read-only, with its filters
    listing = admin.http.get("/admin/accounts/auditevent/?source__exact=admin")
    assert listing.status_code == 200 and name in listing.text and "Add audit event" not in listing.text
    assert admin.http.get("/admin/accounts/auditevent/add/").status_code == 403


@pytest.mark.django_db
def test_create_and_revoke_api_key_commands_are_audited(capsys):
    project = Project.objects.create(slug=f"cmd-{secrets.token_hex(3)}", name="Cmd")
    call_command("create_api_key", project.slug, "--name", "ci-bot", "--rpm", "30", "--monthly-budget", "5")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    key = ApiKey.objects.get(project=project)
    (created,) = events(object_type="accounts.apikey", object_id=str(key.pk))
    assert (created.source, created.action) == ("create_api_key", "add")
    assert created.changes["rpm_limit"] == [None, 30] and created.changes["monthly_budget_usd"] == [None, "5.00"]
    assert created.changes["digest"] == ["", "[new secret]"] and created.actor and created.user_id is None

    call_command("revoke_api_key", key.prefix)
    (revoked,) = events(object_type="accounts.apikey", object_id=str(key.pk), source="revoke_api_key")
    assert revoked.action == "change" and list(revoked.changes) == ["revoked_at"]
    assert revoked.changes["revoked_at"][0] is None and revoked.changes["revoked_at"][1]
    no_secret_anywhere(secret)


@pytest.mark.django_db
def test_apply_config_is_audited_field_by_field_and_a_bad_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIT_KEY", CREDENTIAL)
    path = tmp_path / "gatehouse.yaml"
    path.write_text(
        "providers:\n"
        "  - {name: audit-up, kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key_env: AUDIT_KEY}\n"
        "models:\n  - {alias: audit-alias, targets: [{provider: audit-up, model: m1}]}\n"
        "prices:\n  - {model: m1, input_per_mtok: 1, output_per_mtok: 2}\n"
        "projects:\n  - {slug: audit-proj, name: Audit, rpm: 10}\n"
    )
    call_command("apply_config", str(path))
    applied = events(source="apply_config")
    kinds = {(e.object_type, e.action) for e in applied}
    assert {("accounts.provider", "add"), ("accounts.provideraccount", "add"), ("accounts.modelroute", "add"),
            ("accounts.routetarget", "add"), ("usage.modelprice", "add"), ("accounts.project", "add")} <= kinds  # fmt: skip

    call_command("apply_config", str(path))  # the same file again changes nothing, so says nothing
    assert len(events(source="apply_config")) == len(applied)

    path.write_text(path.read_text().replace("rpm: 10", "rpm: 20"))
    call_command("apply_config", str(path))
    (change,) = events(source="apply_config", action="change")
    assert change.object_type == "accounts.project" and change.changes == {"rpm_limit": [10, 20]}

    path.write_text(path.read_text().replace("rpm: 20", "rpm: 30").replace("kind: openai", "kind: nonsense"))
    before = AuditEvent.objects.count()
    with pytest.raises(CommandError):
        call_command("apply_config", str(path))
    assert AuditEvent.objects.count() == before  # nothing applied, nothing audited
    no_secret_anywhere(CREDENTIAL)
