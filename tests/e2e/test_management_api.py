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
    put = manage.put(f"/routes/{route.json()['id']}", json={**read_back, "display_name": "From the API"})
    assert put.status_code == 200 and put.json()["display_name"] == "From the API"
    assert manage.delete(f"/routes/{route.json()['id']}").status_code == 204
    assert manage.delete(f"/providers/{name}").status_code == 204
    _error(manage.read.get(f"/providers/{name}"), 404, "not_found")

    price = manage.post("/prices", json={"model": f"m-{alias}", "input_per_mtok": "1.25", "output_per_mtok": 5,
                                         "effective_from": "2026-01-01"})  # fmt: skip
    assert price.status_code == 201, price.text
    assert price.json()["input_per_mtok"] == "1.250000" and price.json()["effective_from"] == "2026-01-01"
    assert manage.read.get("/prices", params={"model": f"m-{alias}"}).json()["data"][0]["id"] == price.json()["id"]
    _error(manage.post("/prices", json={"model": "x", "input_per_mtok": "NaN"}), 422, "invalid_request_error")


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
