"""The management API over real HTTP against the real server: tokens and scopes, every resource, idempotent creates,
cursor pages, error bodies, and that what it creates works on the model API at once."""

import time
import uuid

import anthropic
import httpx
import pytest

from tests.conftest import start_gateway, stop_gateway

def _token(scope: str) -> str:
    from accounts.api_tokens import token_create

    return token_create(name=f"{scope}-{uuid.uuid4().hex[:8]}", scope=scope)[1]


@pytest.fixture
def manage(world, committed):
    """An httpx client on /manage/v1 with a write token; `.read` has a read token."""
    client = httpx.Client(base_url=world.url + "/manage/v1", headers={"authorization": f"Bearer {_token('write')}"},
                          timeout=15)  # fmt: skip
    client.read = httpx.Client(base_url=world.url + "/manage/v1", headers={"authorization": f"Bearer {_token('read')}"},
                               timeout=15)  # fmt: skip
    yield client
    client.read.close()
    client.close()


def _error(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == type_ and error["message"]
    return error


def _slug() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def _eventually(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- credentials and scopes -------------------------------------------------------------------------------------


def test_credentials_are_kept_apart_and_scopes_hold(world, manage, committed):
    from accounts.api_tokens import token_create, tokens_revoke
    from accounts.models import ManagementToken

    assert manage.read.get("/projects").status_code == 200
    error = _error(manage.read.post("/projects", json={"slug": _slug()}), 403, "permission_error")
    assert "read scope" in error["message"]

    gateway_key = {"authorization": f"Bearer {world.keys['alpha']}"}
    error = _error(httpx.get(world.url + "/manage/v1/projects", headers=gateway_key), 401, "authentication_error")
    assert "gateway API key" in error["message"]
    _error(httpx.get(world.url + "/manage/v1/projects"), 401, "authentication_error")
    _error(httpx.get(world.url + "/manage/v1/projects", headers={"authorization": "Bearer ghm_nope"}), 401,
           "authentication_error")  # fmt: skip

    token, secret = token_create(name=f"soon-revoked-{uuid.uuid4().hex[:6]}", scope="write")
    assert httpx.get(world.url + "/manage/v1/projects", headers={"authorization": f"Bearer {secret}"}).status_code == 200
    tokens_revoke(ManagementToken.objects.filter(id=token.id))
    _error(httpx.get(world.url + "/manage/v1/projects", headers={"authorization": f"Bearer {secret}"}), 401,
           "authentication_error")  # fmt: skip

    # A management token is not a model API key: the Anthropic SDK gets its own 401.
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=world.url, api_key=secret, max_retries=0).messages.create(
            model="gw-anthropic", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )


def test_openapi_document_describes_the_management_api(world):
    doc = httpx.get(world.url + "/manage/v1/openapi.json").json()
    assert {"/manage/v1/projects", "/manage/v1/keys/{key_id}/rotate", "/manage/v1/status"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]
    create = doc["paths"]["/manage/v1/projects"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert {"slug", "monthly_budget_usd", "allowed_models"} <= set(body["properties"])
    assert {"201", "409", "422"} <= set(create["responses"])
    provider_body = doc["paths"]["/manage/v1/providers"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "api_key" in provider_body["properties"]["accounts"]["items"]["properties"]  # nested schemas inlined
    listed = doc["paths"]["/manage/v1/keys"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["$ref"].endswith("KeyPage") and "secret" not in str(doc["components"]["schemas"]["KeyOut"])
    assert httpx.get(world.url + "/manage/v1/docs").status_code == 200


# --- projects -------------------------------------------------------------------------------------------------


def test_project_lifecycle_and_validation(world, manage):
    slug = _slug()
    created = manage.post("/projects", json={"slug": slug, "name": "Onboarded", "monthly_budget_usd": "25.50",
                                              "rpm": 60, "allowed_models": ["gw-openai"]})  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["monthly_budget_usd"] == "25.50" and created.json()["allowed_models"] == ["gw-openai"]
    _error(manage.post("/projects", json={"slug": slug}), 409, "conflict")

    problems = _error(manage.post("/projects", json={"slug": "bad slug!", "rpm": "lots", "colour": "red"}), 422,
                      "invalid_request_error")["problems"]  # fmt: skip
    assert any(p.startswith("projects[0].slug") for p in problems)
    assert any(p.startswith("projects[0].rpm") for p in problems)
    assert any(p.startswith("projects[0].colour: unknown field") for p in problems)
    _error(manage.post("/projects", content=b"{not json", headers={"content-type": "application/json"}), 400,
           "invalid_request_error")  # fmt: skip

    patched = manage.patch(f"/projects/{slug}", json={"daily_budget_usd": 2, "name": "Renamed"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["daily_budget_usd"] == "2.00" and patched.json()["monthly_budget_usd"] == "25.50"
    assert patched.json()["name"] == "Renamed" and patched.json()["rpm"] == 60
    _error(manage.patch(f"/projects/{slug}", json={"slug": "other"}), 422, "invalid_request_error")
    _error(manage.get("/projects/no-such-project"), 404, "not_found")

    assert manage.delete(f"/projects/{slug}").json()["active"] is False
    assert manage.read.get(f"/projects/{slug}").json()["active"] is False


def test_lists_are_cursor_pages(world, manage):
    slugs = [manage.post("/projects", json={"slug": _slug()}).json()["slug"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        page = manage.read.get("/projects", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["data"]) <= 2
        seen += [p["slug"] for p in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen.index(slugs[-1]) < seen.index(slugs[0])  # newest first
    assert set(slugs) <= set(seen) and len(seen) == len(set(seen))
    _error(manage.read.get("/projects", params={"cursor": "%%%"}), 400, "invalid_request_error")
    _error(manage.read.get("/projects", params={"limit": 0}), 400, "invalid_request_error")


# --- keys -----------------------------------------------------------------------------------------------------


def _ask(world, secret):
    return anthropic.Anthropic(base_url=world.url, api_key=secret, max_retries=0).messages.create(
        model="gw-anthropic", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )


def test_minted_key_works_at_once_and_an_idempotent_retry_mints_nothing(world, manage, committed):
    from accounts.models import ApiKey

    slug = manage.post("/projects", json={"slug": _slug()}).json()["slug"]
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = manage.post(f"/projects/{slug}/keys", json={"name": "ci-bot", "rpm_limit": 100}, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["secret"]
    assert secret.startswith("gh_") and first.json()["prefix"] == secret[:11]
    again = manage.post(f"/projects/{slug}/keys", json={"name": "ci-bot", "rpm_limit": 100}, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert ApiKey.objects.filter(project__slug=slug).count() == 1
    _error(manage.post(f"/projects/{slug}/keys", json={"name": "other"}, headers=headers), 422, "idempotency_error")

    assert _ask(world, secret).content[0].text

    # Every write is in the audit trail under the token's name, without the secret.
    from accounts.models import AuditEvent

    events = AuditEvent.objects.filter(source="api", object_type="accounts.apikey", object_id=str(first.json()["id"]))
    assert [(e.action, e.actor.startswith("token:write-")) for e in events] == [("add", True)]
    assert secret not in str(events[0].changes) and secret[11:] not in str(events[0].changes)
    assert AuditEvent.objects.filter(source="api", object_type="accounts.project", action="add",
                                     object_repr__contains=slug).count() == 1  # fmt: skip

    listed = manage.read.get("/keys", params={"project": slug}).json()["data"]
    assert [k["prefix"] for k in listed] == [secret[:11]]
    assert secret not in manage.read.get("/keys", params={"project": slug}).text
    assert "secret" not in manage.read.get(f"/keys/{listed[0]['id']}").json()

    problems = _error(manage.post(f"/projects/{slug}/keys", json={"rpm_limit": -1, "wat": 1}), 422,
                      "invalid_request_error")["problems"]  # fmt: skip
    assert any(p.startswith("name") for p in problems) and any(p.startswith("wat") for p in problems)


def test_revoke_and_rotate(world, manage):
    slug = manage.post("/projects", json={"slug": _slug()}).json()["slug"]
    key = manage.post(f"/projects/{slug}/keys", json={"name": "svc"}).json()
    assert _ask(world, key["secret"])

    rotated = manage.post(f"/keys/{key['id']}/rotate", json={"grace_seconds": 300})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["secret"] != key["secret"] and new["name"] == "svc" and new["replaces"]["expires_at"]
    assert _ask(world, new["secret"]) and _ask(world, key["secret"])  # both valid during the grace period

    immediate = manage.post(f"/keys/{new['id']}/rotate").json()  # grace 0: the old one stops now
    assert manage.read.get(f"/keys/{new['id']}").json()["status"] == "revoked"
    _eventually(lambda: _refused(world, new["secret"]))
    assert _ask(world, immediate["secret"])

    revoked = manage.post(f"/keys/{immediate['id']}/revoke").json()
    assert revoked["status"] == "revoked"
    from accounts.models import AuditEvent

    assert AuditEvent.objects.filter(source="api", object_type="accounts.apikey", object_id=str(immediate["id"]),
                                     action="change", changes__has_key="revoked_at").exists()  # fmt: skip
    _eventually(lambda: _refused(world, immediate["secret"]))
    _error(manage.post(f"/keys/{immediate['id']}/rotate"), 409, "conflict")
    _error(manage.post(f"/keys/{key['id']}/rotate", json={"grace_seconds": -5}), 422, "invalid_request_error")


def _refused(world, secret):
    try:
        _ask(world, secret)
    except anthropic.AuthenticationError:
        return True
    raise AssertionError("still accepted")


# --- providers, routes, prices --------------------------------------------------------------------------------


def test_provider_route_and_price_through_the_api_serve_requests(world, manage, committed):
    name = f"api-made-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "kind": "anthropic", "base_url": world.fake.url,
            "accounts": [{"name": "main", "api_key": "sk-fake-upstream-credential"}]}  # fmt: skip
    created = manage.post("/providers", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["accounts"][0]["has_credential"] is True
    assert "sk-fake-upstream-credential" not in created.text
    assert "sk-fake-upstream-credential" not in manage.read.get(f"/providers/{name}").text

    # ${VAR} and api_key_env would read the server's environment: refused.
    leak = {**body, "name": name + "-x", "extra_headers": {"X-Leak": "${GATEWAY_ENCRYPTION_KEY}"}}
    _error(manage.post("/providers", json=leak), 422, "invalid_request_error")
    _error(manage.post("/providers", json={**body, "name": name + "-y", "accounts": [{"name": "a", "api_key_env": "HOME"}]}),
           422, "invalid_request_error")  # fmt: skip

    alias = f"api-route-{uuid.uuid4().hex[:6]}"
    route = manage.post("/routes", json={"alias": alias, "targets": [{"provider": name, "model": "fake-claude"}]})
    assert route.status_code == 201, route.text
    answer = _eventually(lambda: anthropic.Anthropic(base_url=world.url, api_key=world.keys["alpha"], max_retries=0)
                         .messages.create(model=alias, max_tokens=8, messages=[{"role": "user", "content": "hi"}]))  # fmt: skip
    assert answer.content[0].text

    _error(manage.delete(f"/providers/{name}"), 409, "conflict")  # still a route's target
    read_back = manage.read.get(f"/routes/{route.json()['id']}").json()
    assert read_back["response_cache_ttl"] is None and read_back["on_all_open"] == ""  # the project's, the setting's
    put = manage.put(f"/routes/{route.json()['id']}", json={**read_back, "display_name": "From the API",
                                                            "response_cache_ttl": 0, "on_all_open": "fail_fast"})  # fmt: skip
    assert put.status_code == 200 and put.json()["display_name"] == "From the API"
    assert put.json()["response_cache_ttl"] == 0 and put.json()["on_all_open"] == "fail_fast"
    _error(manage.put(f"/routes/{route.json()['id']}", json={**read_back, "on_all_open": "sometimes"}), 422,
           "invalid_request_error")
    assert manage.delete(f"/routes/{route.json()['id']}").status_code == 204
    assert manage.delete(f"/providers/{name}").status_code == 204
    _error(manage.read.get(f"/providers/{name}"), 404, "not_found")

    price = manage.post("/prices", json={"model": f"m-{alias}", "input_per_mtok": "1.25", "output_per_mtok": 5,
                                         "cache_write_1h_per_mtok": "2.5", "batch_discount": "0.5",
                                         "effective_from": "2026-01-01"})  # fmt: skip
    assert price.status_code == 201, price.text
    assert price.json()["input_per_mtok"] == "1.250000" and price.json()["effective_from"] == "2026-01-01"
    assert (price.json()["cache_write_1h_per_mtok"], price.json()["batch_discount"]) == ("2.500000", "0.5000")
    _error(manage.post("/prices", json={"model": "x", "batch_discount": "1.5"}), 422, "invalid_request_error")
    assert manage.read.get("/prices", params={"model": f"m-{alias}"}).json()["data"][0]["id"] == price.json()["id"]
    _error(manage.post("/prices", json={"model": "x", "input_per_mtok": "NaN"}), 422, "invalid_request_error")
    # The long-context tier round-trips; half a tier is refused naming the missing field.
    tier = {"long_context_threshold": 200000, "long_input_per_mtok": "6", "long_output_per_mtok": "22.5",
            "long_cache_read_per_mtok": "0.6", "long_cache_write_per_mtok": "7.5", "long_cache_write_1h_per_mtok": "12"}
    tiered = manage.post("/prices", json={"model": f"m-{alias}", "input_per_mtok": "3", "output_per_mtok": "15",
                                          "effective_from": "2026-02-01", **tier})  # fmt: skip
    assert tiered.status_code == 201, tiered.text
    read_tier = manage.read.get("/prices", params={"model": f"m-{alias}"}).json()["data"][0]
    assert read_tier["long_context_threshold"] == 200000 and read_tier["long_output_per_mtok"] == "22.500000"
    assert manage.read.get("/prices", params={"model": f"m-{alias}"}).json()["data"][1]["long_context_threshold"] is None
    half = _error(manage.post("/prices", json={"model": "x", "long_context_threshold": 200000,
                                               "long_input_per_mtok": "6"}), 422, "invalid_request_error")  # fmt: skip
    assert any("long_output_per_mtok: required" in p for p in half["problems"]), half


def test_status_lists_accounts_with_their_breaker(world, manage):
    status = manage.read.get("/status").json()
    rows = {(a["provider"], a["account"]): a for a in status["accounts"]}
    assert rows[("fake-openai", "main")]["breaker"] in {"closed", "open", "half_open"}
    assert isinstance(status["in_flight"], int) and status["process"]


# --- the management API's own rate limit --------------------------------------------------------------------


def test_management_calls_are_rate_limited_per_token(django_db_setup, tmp_path, committed):
    server = start_gateway({"GATEWAY_MANAGEMENT_RATE": "5/m"}, tmp_dir=tmp_path)
    try:
        headers = {"authorization": f"Bearer {_token('read')}"}
        codes = [httpx.get(server.url + "/manage/v1/projects", headers=headers).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        limited = httpx.get(server.url + "/manage/v1/projects", headers=headers)
        _error(limited, 429, "rate_limit_error")
        assert int(limited.headers["retry-after"]) > 0
        other = {"authorization": f"Bearer {_token('read')}"}  # another token has its own allowance
        assert httpx.get(server.url + "/manage/v1/projects", headers=other).status_code == 200
    finally:
        stop_gateway(server)


# --- numbers --------------------------------------------------------------------------------------------------


def _traffic(world, manage):
    """A new project with a key and a few answered, streamed and failed requests; returns (slug, key)."""
    slug = manage.post("/projects", json={"slug": _slug(), "monthly_budget_usd": "10"}).json()["slug"]
    key = manage.post(f"/projects/{slug}/keys", json={"name": "numbers", "daily_budget_usd": "1"}).json()
    client = anthropic.Anthropic(base_url=world.url, api_key=key["secret"], max_retries=0)
    for text in ("one", "two"):
        client.messages.create(model="gw-anthropic", max_tokens=20, messages=[{"role": "user", "content": text}])
    with client.messages.stream(model="gw-openai", max_tokens=20, messages=[{"role": "user", "content": "s"}]) as s:
        s.until_done()
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    return slug, key


def _ledger(slug, count, timeout=10.0):
    from usage.models import UsageRecord

    def rows():
        found = list(UsageRecord.objects.filter(project__slug=slug))
        assert len(found) == count, len(found)
        return found

    return _eventually(rows, timeout)


def test_usage_costs_errors_and_budgets_match_the_ledger(world, manage, committed):
    from decimal import Decimal

    slug, key = _traffic(world, manage)
    rows = _ledger(slug, 4)
    cost = sum((r.cost_usd for r in rows), Decimal(0))
    assert cost > 0

    usage = manage.read.get("/usage", params={"project": slug, "group_by": "model"}).json()
    totals = usage["totals"]
    assert totals["requests"] == 4 and totals["errors"] == 1
    assert Decimal(totals["cost_usd"]) == cost
    assert totals["input_tokens"] == sum(r.input_tokens for r in rows)
    assert totals["output_tokens"] == sum(r.output_tokens for r in rows)
    assert totals["cache_hits"] == sum(r.outcome == "cache_hit" for r in rows)
    assert Decimal(totals["saved_usd"]) == sum((r.saved_usd for r in rows), Decimal(0))
    by_model = {r["model"]: r for r in usage["series"]}
    assert by_model["fake-claude"]["requests"] == 2 and by_model["fake-gpt"]["requests"] == 1

    hourly = manage.read.get("/usage", params={"project": slug, "interval": "hour"})
    assert hourly.status_code == 200, hourly.text
    hourly = hourly.json()
    assert sum(r["requests"] for r in hourly["series"]) == 4
    assert Decimal(hourly["totals"]["cost_usd"]) == cost
    _error(manage.read.get("/usage", params={"interval": "hour", "start": "2026-01-01"}), 400, "invalid_request_error")

    costs = manage.read.get("/costs", params={"group_by": "key", "project": slug}).json()
    assert Decimal(costs["total_usd"]) == cost and costs["data"][0]["key"] == key["prefix"]
    csv_text = manage.read.get("/costs", params={"project": slug, "format": "csv"}).text
    assert csv_text.splitlines()[0].startswith("project,") and slug in csv_text

    stats = manage.read.get("/errors/stats", params={"project": slug}).json()
    assert stats["requests"] == 4 and stats["errors"] == 1 and stats["by_kind"] == {"client_error": 1}
    failed = manage.read.get("/errors", params={"project": slug}).json()["data"]
    assert [e["http_status"] for e in failed] == [404] and failed[0]["model"] == "no-such-model"

    budgets = manage.read.get("/budgets").json()
    mine = next(p for p in budgets["projects"] if p["project"] == slug)
    assert Decimal(mine["month_usd"]) == cost and mine["monthly_budget_usd"] == "10.00"
    assert mine["month_percent"] == round(float(cost / 10 * 100), 1)
    key_row = next(k for k in budgets["keys"] if k["key"] == key["prefix"])
    assert Decimal(key_row["today_usd"]) == cost and key_row["daily_budget_usd"] == "1.00"

    _error(manage.read.get("/usage", params={"start": "2026-13-01"}), 400, "invalid_request_error")
    _error(manage.read.get("/usage", params={"project": "nope-nope"}), 404, "not_found")


def test_rolled_up_past_days_and_todays_raw_rows_add_up(world, manage, committed):
    """Past days come from the rollups, today from raw rows: both halves reach the same totals as the ledger."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from usage import services
    from usage.models import UsageRecord

    slug, _ = _traffic(world, manage)
    rows = _ledger(slug, 4)
    yesterday = timezone.localdate() - timedelta(days=1)
    moved = rows[:2]  # two of them "happened" yesterday, then yesterday is rolled up
    UsageRecord.objects.filter(id__in=[r.id for r in moved]).update(created_at=timezone.now() - timedelta(days=1))
    services.rollup_day(yesterday)

    usage = manage.read.get("/usage", params={"project": slug, "start": yesterday.isoformat()}).json()
    assert usage["totals"]["requests"] == 4
    assert Decimal(usage["totals"]["cost_usd"]) == sum((r.cost_usd for r in rows), Decimal(0))
    per_day = {r["period"]: r["requests"] for r in usage["series"]}
    assert per_day == {yesterday.isoformat(): 2, timezone.localdate().isoformat(): 2}


def _finance_login(world) -> httpx.Client:
    """A real admin session of a Finance user, as a person reading the report has."""
    import re

    from django.contrib.auth.models import Group, User

    name = f"finance-{uuid.uuid4().hex[:6]}"
    user = User.objects.create_user(name, password="a long enough password 1", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    browser = httpx.Client(base_url=world.url, timeout=15)
    page = browser.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = browser.post("/admin/login/", data={"username": name, "password": "a long enough password 1",
                                               "csrfmiddlewaretoken": token, "next": "/admin/"})  # fmt: skip
    assert done.status_code == 302, done.text
    return browser


def test_numbers_agree_with_the_finance_report_to_the_cent(world, manage, committed):
    import csv
    import io
    from datetime import timedelta
    from decimal import Decimal

    from accounts.models import Project

    slug, _ = _traffic(world, manage)
    _ledger(slug, 4)
    project_id = Project.objects.get(slug=slug).id
    browser = _finance_login(world)
    from django.utils import timezone

    first = (timezone.localdate() - timedelta(days=40)).isoformat()  # a range that spans rollups and today
    report = browser.get("/admin/reports/finance/", params={"group": "model", "project": project_id, "format": "csv",
                                                            "from": first})  # fmt: skip
    assert report.status_code == 200, report.text[:300]
    table = list(csv.reader(io.StringIO(report.text)))
    header, rows = table[0], table[1:]
    cost_column, requests_column = header.index("Cost (USD)"), header.index("Requests")
    report_by_model = {r[0]: (int(r[requests_column]), Decimal(r[cost_column])) for r in rows}

    api = manage.read.get("/costs", params={"group_by": "model", "project": slug, "start": first}).json()
    # the page labels a request that never reached a model "(not routed)"; the API leaves the model empty
    api_by_model = {r["model"] or "(not routed)": (r["requests"], Decimal(r["cost_usd"])) for r in api["data"]}
    total_label = rows[-1][0]
    assert report_by_model.pop(total_label)[1] == Decimal(api["total_usd"])
    assert report_by_model == api_by_model


# --- one rule, three doors --------------------------------------------------------------------------------------

BAD_PRICES = [
    ("batch_discount", "1.5", "Ensure this value is less than or equal to 1."),
    ("batch_discount", "-0.5", "Ensure this value is greater than or equal to 0."),
    ("output_per_mtok", "-2", "Ensure this value is greater than or equal to 0."),
    ("input_per_mtok", "0.0000001", "Ensure that there are no more than 6 decimal places."),
]


@pytest.mark.parametrize("field, value, message", BAD_PRICES, ids=[f"{f}={v}" for f, v, _ in BAD_PRICES])
def test_a_bad_price_is_refused_in_the_same_words_by_the_file_the_api_and_the_admin(world, manage, committed,
                                                                                    tmp_path, field, value, message):
    """The ModelPrice field is the rule's one declaration (accounts/fields.py): the config file, the management
    API (which goes through the file's validator) and the admin's form refuse the same value with the same
    message, and nothing is written."""
    import html
    import re

    import yaml
    from django.core.management import CommandError, call_command

    from tests.e2e.test_failover_and_breakers import admin_session
    from usage.models import ModelPrice

    model = f"rule-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "gatehouse.yaml"
    path.write_text(yaml.safe_dump({"prices": [{"model": model, field: value}]}))
    with pytest.raises(CommandError) as file_error:
        call_command("apply_config", str(path))
    assert f"prices[0].{field}: {message}" in str(file_error.value)

    problems = _error(manage.post("/prices", json={"model": model, field: value}), 422,
                      "invalid_request_error")["problems"]  # fmt: skip
    assert problems == [f"prices[0].{field}: {message}"]

    admin = admin_session(world.url)
    form = {"model": model, "effective_from": "2026-01-01", "input_per_mtok": "1", "output_per_mtok": "1",
            "cache_read_per_mtok": "0", "cache_write_per_mtok": "0", "batch_discount": "0", field: value,
            "csrfmiddlewaretoken": admin.cookies["csrftoken"]}  # fmt: skip
    page = admin.post("/admin/usage/modelprice/add/", data=form, headers={"referer": world.url + "/admin/"})
    assert page.status_code == 200, page.status_code  # the form again, not a redirect to the list
    row = re.search(rf'<div class="form-row[^"]*field-{field}[^"]*">(.*?)</div>\s*</div>', page.text, re.S)
    errors = [html.unescape(e) for e in re.findall(r"<li>(.*?)</li>", re.search(r'errorlist[^>]*>(.*?)</ul>',
                                                                                 row.group(1), re.S).group(1))]
    assert errors == [message]
    assert not ModelPrice.objects.filter(model=model).exists()
