"""The Coding Gateway's HTTP surface through the real server (docs/coding-gateway-api.md): its /admin/* JSON
endpoints in its shapes (tests/fixtures/seeds/coding-gateway-api/shapes.json) with numbers that follow from the
requests sent here, the projects round trip, its error shape, the Django admin still served to a browser on the
same paths, /chat and /models, and its response headers (X-Cache, X-RateLimit-*, ...) with their values."""

import json
import time
import uuid
from django.utils import timezone
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import start_gateway, stop_gateway
from tests.e2e import policy_world as pw

SHAPES = json.loads((Path(__file__).parents[1] / "fixtures/seeds/coding-gateway-api/shapes.json").read_text())
ADMIN_KEY = "coding-gateway-admin-key-0123456789"
TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool, "list": list, "dict": dict, "null": type(None)}


@pytest.fixture(scope="module")
def cg(world, tmp_path_factory):
    """A gateway started as a Coding Gateway user would run it: ADMIN_API_KEY set, its headers on."""
    server = start_gateway({"ADMIN_API_KEY": ADMIN_KEY, "GATEWAY_CODING_GATEWAY_HEADERS": "true"},
                           tmp_dir=tmp_path_factory.mktemp("coding-gateway"))  # fmt: skip
    yield server.url
    stop_gateway(server)


def admin(cg: str, method: str, path: str, *, header: str = "x-api-key", secret: str = ADMIN_KEY, **kwargs):
    value = f"Bearer {secret}" if header == "authorization" else secret
    return httpx.request(method, cg + path, headers={header: value, **kwargs.pop("headers", {})}, timeout=20, **kwargs)


def assert_shape(name: str, body: dict) -> None:
    """At least the keys the Coding Gateway answered with, of its types (Gatehouse may add keys)."""
    shape = SHAPES["endpoints"][name]
    for key, kind in shape["keys"].items():
        assert key in body, (name, key, body)
        assert _is(body[key], kind), (name, key, body[key])
    for key, fields in shape.get("items", {}).items():
        items = body[key] if isinstance(body[key], list) else [body[key]]
        for item in items:
            for field, kind in fields.items():
                assert field in item and _is(item[field], kind), (name, key, field, item)


def _is(value, kind: str) -> bool:
    return any(isinstance(value, TYPES[k]) and not (k in ("int", "float") and isinstance(value, bool))
               for k in kind.split("|"))  # fmt: skip


def _chat(url: str, secret: str, text: str, model: str = "gw-anthropic", **extra) -> httpx.Response:
    return pw.openai_chat(url, secret, model, text, **extra)


def _wait_rows(request_ids: list[str]) -> None:
    from usage.models import UsageRecord

    deadline = time.monotonic() + 10
    while UsageRecord.objects.filter(request_id__in=request_ids).count() < len(request_ids):
        assert time.monotonic() < deadline, "ledger rows never written"
        time.sleep(0.05)


# --- the /admin/* numbers -----------------------------------------------------------------------------------------


def test_admin_numbers_answer_in_the_seed_shapes_with_the_numbers_sent(world, cg, committed):
    project = pw.project()
    secret = pw.key(project)
    ok = [_chat(cg, secret, f"SAY: counted {i}\nUSAGE: in=1000 out=20") for i in range(2)]
    failed = _chat(cg, secret, "FAIL: 400", model="gw-openai")
    assert [r.status_code for r in ok] == [200, 200] and failed.status_code == 400
    ids = [r.headers["x-request-id"] for r in [*ok, failed]]
    _wait_rows(ids)
    cost = 2 * (1000 * 3 + 20 * 15) / 1_000_000  # fake-claude: $3 in, $15 out per Mtok (tests/e2e/conftest.py)

    usage = admin(cg, "GET", f"/admin/usage?project_id={project.id}")
    assert usage.status_code == 200, usage.text
    assert_shape("GET /admin/usage", usage.json())
    by_model = {row["model"]: row for row in usage.json()["usage"]}
    claude = by_model["fake-claude"]
    assert (claude["input_tokens"], claude["output_tokens"], claude["request_count"]) == (2000, 40, 2)
    assert claude["cost_usd"] == pytest.approx(cost) and by_model["fake-gpt"]["request_count"] == 1
    assert usage.json()["project_id"] == project.id

    daily = admin(cg, "GET", f"/admin/usage/daily?project_id={project.id}&days=3", header="api-key").json()
    assert_shape("GET /admin/usage/daily", daily)
    claude_days = [(r["date"], r["requests"], r["input_tokens"]) for r in daily["daily"] if r["model"] == "fake-claude"]
    assert claude_days == [(timezone.localdate().isoformat(), 2, 2000)]
    assert daily["days"] == 3

    costs = admin(cg, "GET", f"/admin/costs?project_id={project.id}", header="authorization").json()
    assert_shape("GET /admin/costs", costs)
    assert all(value == pytest.approx(cost) for value in costs["costs"].values()), costs

    errors = admin(cg, "GET", "/admin/errors?count=1000").json()
    assert_shape("GET /admin/errors", errors)
    mine = [e for e in errors["errors"] if e["request_id"] == ids[2]]
    assert len(mine) == 1 and mine[0]["http_status"] == 400 and errors["count"] == len(errors["errors"])
    assert not any(e["request_id"] in ids[:2] for e in errors["errors"])

    stats = admin(cg, "GET", "/admin/errors/stats?hours=24").json()
    assert stats["hours"] == 24 and stats["errors"] >= 1 and stats["requests"] >= 3
    assert sum(stats["by_kind"].values()) == stats["errors"] and 0 < stats["error_rate"] <= 1


def test_admin_metrics_is_prometheus_text(world, cg):
    metrics = admin(cg, "GET", "/admin/metrics", header="authorization")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith(SHAPES["metrics"]["content_type"])
    assert all(series in metrics.text for series in SHAPES["metrics"]["series"])


def test_query_parameters_are_checked(world, cg):
    assert admin(cg, "GET", "/admin/usage/daily?days=91").json() == {"detail": "days: between 1 and 90"}
    assert admin(cg, "GET", "/admin/usage?start=yesterday").status_code == 422
    assert admin(cg, "GET", "/admin/usage?project_id=999999").json() == SHAPES["auth"]["not_found"]["body"]
    assert admin(cg, "GET", "/admin/errors?count=0").status_code == 422


# --- projects ------------------------------------------------------------------------------------------------------


def test_projects_round_trip_and_the_project_key_serves_requests(world, cg, committed):
    name, client_key = f"Seed Team {uuid.uuid4().hex[:6]}", f"seed-client-key-{uuid.uuid4().hex}"
    body = {"name": name, "api_key": client_key, "rate_limit_rpm": 30, "config": {"monthly_budget_usd": "10"}}
    created = admin(cg, "POST", "/admin/projects", json=body)
    assert created.status_code == 200, created.text
    assert_shape("POST /admin/projects", created.json())
    project_id = created.json()["id"]
    assert created.json()["name"] == name and created.json()["rate_limit_rpm"] == 30

    answer = openai.OpenAI(base_url=cg + "/v1", api_key=client_key, max_retries=0).chat.completions.create(
        model="gw-anthropic", messages=[{"role": "user", "content": "SAY: from the seed key\nUSAGE: in=10 out=2"}]
    )
    assert answer.choices[0].message.content == "from the seed key"

    def listed() -> dict:
        projects = admin(cg, "GET", "/admin/projects").json()
        assert_shape("GET /admin/projects", projects)
        return next(p for p in projects["projects"] if p["id"] == project_id)

    deadline = time.monotonic() + 10
    while (row := listed())["request_count"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert row["total_cost"] == pytest.approx((10 * 3 + 2 * 15) / 1_000_000)
    assert (row["rate_limit_rpm"], row["is_active"], row["config"]["monthly_budget_usd"]) == (30, True, "10.00")

    updated = admin(cg, "PUT", f"/admin/projects/{project_id}", json={"rate_limit_rpm": 5, "config": {"tpm": 1000}})
    assert updated.status_code == 200 and updated.json() == {"id": project_id, "name": name, "updated": True}
    assert_shape("PUT /admin/projects/{id}", updated.json())
    assert (listed()["rate_limit_rpm"], listed()["config"]["tpm"]) == (5, 1000)

    deleted = admin(cg, "DELETE", f"/admin/projects/{project_id}")
    assert deleted.json() == {"id": project_id, "deleted": True}
    assert listed()["is_active"] is False
    deadline = time.monotonic() + 5  # the server's key cache (GATEWAY_CACHE_TTL, 0.5 s in tests)
    while _chat(cg, client_key, "SAY: still here?").status_code != 401:
        assert time.monotonic() < deadline, "a deactivated project's key still works"
        time.sleep(0.1)


def test_project_writes_are_validated_and_scoped(world, cg, committed):
    from accounts.api_tokens import token_create
    from accounts.models import Project

    name = f"Checked {uuid.uuid4().hex[:6]}"
    assert admin(cg, "POST", "/admin/projects", json={"name": name}).status_code == 200
    assert Project.objects.get(name=name).rpm_limit == 60  # the Coding Gateway's default
    conflict = admin(cg, "POST", "/admin/projects", json={"name": name})
    assert conflict.status_code == 409 and "exists" in conflict.json()["detail"]
    unknown = admin(cg, "POST", "/admin/projects", json={"name": "x", "config": {"colour": "red"}})
    assert unknown.status_code == 422 and "config.colour" in unknown.json()["detail"]
    bad = admin(cg, "POST", "/admin/projects", json={"name": f"Bad {uuid.uuid4().hex[:6]}", "rate_limit_rpm": "lots"})
    assert bad.status_code == 422 and "rpm" in bad.json()["detail"]
    short = admin(cg, "POST", "/admin/projects", json={"name": f"Short {uuid.uuid4().hex[:6]}", "api_key": "tiny"})
    assert short.status_code == 422 and "at least 8" in short.json()["detail"]
    assert not Project.objects.filter(name__startswith="Short ").exists()  # all or nothing
    shared_key, taken = f"shared-key-{uuid.uuid4().hex}", f"Taken {uuid.uuid4().hex[:6]}"
    first = admin(cg, "POST", "/admin/projects", json={"name": f"First {taken}", "api_key": shared_key})
    assert first.status_code == 200
    again = admin(cg, "POST", "/admin/projects", json={"name": taken, "api_key": shared_key})
    assert again.status_code == 409 and "another project" in again.json()["detail"]
    assert not Project.objects.filter(name=taken).exists()
    assert admin(cg, "PUT", "/admin/projects/999999", json={"name": "n"}).json() == SHAPES["auth"]["not_found"]["body"]

    read = token_create(name=f"read-{uuid.uuid4().hex[:6]}", scope="read")[1]
    assert admin(cg, "GET", "/admin/projects", header="authorization", secret=read).status_code == 200
    refused = admin(cg, "POST", "/admin/projects", header="authorization", secret=read, json={"name": "n"})
    assert refused.status_code == 403 and "read scope" in refused.json()["detail"]
    write = token_create(name=f"write-{uuid.uuid4().hex[:6]}", scope="write")[1]
    by_token = admin(cg, "POST", "/admin/projects", header="authorization", secret=write,
                     json={"name": f"By token {uuid.uuid4().hex[:6]}"})  # fmt: skip
    assert by_token.status_code == 200

    from accounts.models import AuditEvent

    event = AuditEvent.objects.filter(object_type="accounts.project", object_id=str(by_token.json()["id"])).first()
    assert event is not None and event.actor.startswith("token:write-")


# --- who gets what: the seed's error shape, and the Django admin for browsers --------------------------------------


def test_calls_without_the_admin_key_are_refused_in_the_seed_shape(world, cg):
    refused = SHAPES["auth"]["refused"]
    for headers in ({"x-api-key": "wrong"}, {"authorization": f"Bearer {world.keys['alpha']}"},
                    {"accept": "application/json"}):  # fmt: skip
        response = httpx.get(cg + "/admin/usage", headers=headers)
        assert (response.status_code, response.json()) == (refused["status"], refused["body"]), headers
    not_allowed = admin(cg, "PATCH", "/admin/projects", json={})
    assert (not_allowed.status_code, not_allowed.json()) == (405, SHAPES["auth"]["method_not_allowed"]["body"])
    # With no ADMIN_API_KEY configured (the shared test server), only management tokens are admitted.
    assert httpx.get(world.url + "/admin/costs", headers={"x-api-key": ADMIN_KEY}).status_code == 403


@pytest.fixture
def staff_browser(cg, committed):
    from django.contrib.auth.models import User

    from tests.test_audit import Admin

    username, password = f"staff-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    User.objects.create_superuser(username, f"{username}@example.com", password)
    browser = Admin(cg, username, password)
    browser.http.headers["accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    yield browser.http
    browser.http.close()


def test_the_django_admin_keeps_its_pages_on_the_same_paths(world, cg, staff_browser):
    index = staff_browser.get("/admin/")
    assert index.status_code == 200 and "Gateway administration" in index.text
    usage_app = staff_browser.get("/admin/usage/")  # the `usage` app's page, also the Coding Gateway's /admin/usage/
    assert usage_app.status_code == 200 and "text/html" in usage_app.headers["content-type"]
    assert "/admin/usage/usagerecord/" in usage_app.text
    assert staff_browser.get("/admin/usage/usagerecord/").status_code == 200
    assert staff_browser.get("/admin/accounts/project/").status_code == 200
    slash = staff_browser.get("/admin/usage")
    assert slash.status_code == 301 and slash.headers["location"].endswith("/admin/usage/")
    assert staff_browser.get("/admin/usage/daily").status_code == 404  # the admin's own answer, not JSON
    # A page's own fetch asking for JSON still carries the session cookie: still the admin's.
    fetched = staff_browser.get("/admin/usage/", headers={"accept": "application/json"})
    assert "text/html" in fetched.headers["content-type"]
    # The same browser with the key is an API call.
    assert "usage" in staff_browser.get("/admin/usage", headers={"x-api-key": ADMIN_KEY}).json()

    anonymous = httpx.get(cg + "/admin/usage/", follow_redirects=False)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.headers["location"]


# --- /chat and /models ----------------------------------------------------------------------------------------------


def test_chat_answers_in_the_seed_shape_through_the_core(world, cg, committed):
    secret = pw.key(pw.project())
    mark = uuid.uuid4().hex[:8]
    body = {"model": "gw-anthropic", "system": f"be brief {mark}", "max_tokens": 50,
            "messages": [{"role": "user", "content": "SAY: hello chat\nUSAGE: in=12 out=3"}]}  # fmt: skip
    chat = httpx.post(cg + "/chat", headers={"authorization": f"Bearer {secret}"}, json=body, timeout=20)
    assert chat.status_code == 200, chat.text
    assert_shape("POST /chat", chat.json())
    assert chat.json()["text"] == "hello chat" and chat.json()["cached"] is False
    assert chat.json()["usage"] == {"input_tokens": 12, "output_tokens": 3}
    sent = [r for r in world.fake.requests if mark in json.dumps(r.get("body"))]
    assert len(sent) == 1 and sent[0]["body"]["max_tokens"] == 50 and mark in json.dumps(sent[0]["body"]["system"])
    assert chat.headers["x-gateway"] == "gatehouse" and chat.headers["x-request-id"]

    # No model: the default one (the world routes claude-* names to the OpenAI fake)
    default = httpx.post(cg + "/chat", headers={"x-api-key": secret}, json={"messages": [
        {"role": "user", "content": f"SAY: defaulted {mark}"}]}, timeout=20)  # fmt: skip
    assert default.status_code == 200 and default.json()["text"] == f"defaulted {mark}"
    sent = [r["body"]["model"] for r in world.fake.requests if f"defaulted {mark}" in json.dumps(r.get("body"))]
    assert sent == ["fake-gpt"]

    invalid = httpx.post(cg + "/chat", headers={"x-api-key": secret}, json={"messages": [{"role": "user"}]})
    assert invalid.status_code == 400 and "messages[0]" in invalid.json()["error"]["message"]
    assert httpx.post(cg + "/chat", json=body).status_code == 401


def test_a_repeated_chat_is_cached(world, cg, committed):
    from tests.e2e.optimize_world import key_with

    secret, mark = key_with(response_cache_ttl=60), uuid.uuid4().hex[:8]
    body = {"model": "gw-anthropic", "temperature": 0, "messages": [{"role": "user", "content": f"SAY: again {mark}"}]}
    first, second = (httpx.post(cg + "/chat", headers={"x-api-key": secret}, json=body, timeout=20) for _ in range(2))
    assert (first.json()["cached"], second.json()["cached"]) == (False, True)
    assert second.json()["text"] == first.json()["text"] == f"again {mark}"


def test_models_lists_the_keys_models(world, cg):
    listed = httpx.get(cg + "/models", headers={"authorization": f"Bearer {world.keys['beta']}"}).json()
    assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == ["gw-anthropic"]


# --- response headers --------------------------------------------------------------------------------------------


def _headers(response) -> dict:
    names = ("x-gateway", "x-model-source", "x-cache", "x-reduction", "x-ratelimit-limit", "x-ratelimit-remaining")
    return {name: response.headers.get(name) for name in names}


def test_headers_say_cache_reduction_and_the_rpm_window(world, cg, committed):
    from accounts.models import ProjectOptimization

    project = pw.project(rpm_limit=5)
    ProjectOptimization.objects.create(project=project, response_cache_ttl=60, cap_message_chars=200)
    secret, mark = pw.key(project), uuid.uuid4().hex[:8]
    text = f"SAY: headers {mark}"
    first, second = (_chat(cg, secret, text, temperature=0) for _ in range(2))
    assert _headers(first) == {"x-gateway": "gatehouse", "x-model-source": "anthropic", "x-cache": "MISS",
                               "x-reduction": "0", "x-ratelimit-limit": "5", "x-ratelimit-remaining": "4"}  # fmt: skip
    hit = {"x-model-source": "cache", "x-cache": "HIT", "x-ratelimit-remaining": "3"}
    assert _headers(second) == {**_headers(first), **hit}
    assert 0 < int(second.headers["x-ratelimit-reset"]) <= 60
    assert second.headers["x-ratelimit-limit-requests"] == "5"  # OpenAI's own limit headers are still there

    long = f"SAY: reduced {mark}\n" + "filler " * 100 + "\nend"
    with httpx.stream("POST", cg + "/v1/messages", headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
                      json={"model": "gw-openai", "max_tokens": 20, "stream": True,
                            "messages": [{"role": "user", "content": long}]}) as streamed:  # fmt: skip
        assert streamed.status_code == 200 and "text/event-stream" in streamed.headers["content-type"]
        assert b"message_stop" in b"".join(streamed.iter_bytes())
    assert _headers(streamed) == {"x-gateway": "gatehouse", "x-model-source": "openai", "x-cache": "MISS",
                                  "x-reduction": "1", "x-ratelimit-limit": "5", "x-ratelimit-remaining": "2"}  # fmt: skip
    assert streamed.headers["anthropic-ratelimit-requests-limit"] == "5"  # Anthropic's own, likewise

    codes = [_chat(cg, secret, f"SAY: more {i}") for i in range(3)]
    refused = codes[-1]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert (refused.headers["x-gateway"], refused.headers["x-ratelimit-remaining"]) == ("gatehouse", "0")
    assert "x-cache" not in refused.headers


def test_headers_are_off_unless_asked_for(world, committed):
    from tests.e2e.optimize_world import key_with

    secret = key_with(response_cache_ttl=60)
    plain = _chat(world.url, secret, f"SAY: plain {uuid.uuid4().hex[:8]}", temperature=0)
    assert plain.status_code == 200 and plain.headers["x-cache"] == "MISS"  # the cache's own header
    assert not {"x-gateway", "x-model-source", "x-reduction", "x-ratelimit-limit"} & set(plain.headers)
