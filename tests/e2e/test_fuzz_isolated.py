"""Schema-based fuzzing of the endpoints that create things: the batch APIs and the management API.

Fuzzed creates would change the world other tests share (a route "*" catches every model), so these run against
a server of their own on a database of their own, set up the way an operator does it (migrate, apply_config,
create_api_key, create_management_token). The same rules as tests/e2e/test_fuzz.py: no 5xx, no traceback, JSON
(or the CSV or JSONL a 200 asked for), and every error in the caller's format.
"""

import json
import os
import subprocess
import sys
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.conftest import ROOT, start_gateway, stop_gateway
from tests.e2e.test_fuzz import CREDENTIAL_HEADERS, DERANDOMIZE, check_answer

BUDGET_SECONDS = 90
MAX_EXAMPLES = {"POST": 15, "PUT": 10, "PATCH": 10, "GET": 6, "DELETE": 4}
BATCH_OPERATIONS = [
    ("POST", "/v1/messages/batches"), ("GET", "/v1/messages/batches"), ("GET", "/v1/messages/batches/{batch_id}"),
    ("POST", "/v1/messages/batches/{batch_id}/cancel"), ("DELETE", "/v1/messages/batches/{batch_id}"),
    ("GET", "/v1/messages/batches/{batch_id}/results"), ("GET", "/v1/files"), ("GET", "/v1/files/{file_id}"),
    ("DELETE", "/v1/files/{file_id}"), ("POST", "/v1/batches"), ("GET", "/v1/batches"),
    ("GET", "/v1/batches/{batch_id}"), ("POST", "/v1/batches/{batch_id}/cancel"), ("POST", "/v1/batch"),
    ("GET", "/v1/batch/{batch_id}"),
]  # fmt: skip


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.fixture(scope="module")
def isolated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz-isolated")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'fuzz.sqlite3'}", "GATEWAY_DATA_DIR": str(tmp),
           "REDIS_URL": ""}  # fmt: skip
    _manage(env, "migrate", "--noinput")
    (tmp / "config.yaml").write_text("projects:\n  - {slug: fuzz, name: Fuzz}\n")
    _manage(env, "apply_config", str(tmp / "config.yaml"))
    key = _manage(env, "create_api_key", "fuzz", "--name", "fuzz")
    token = _manage(env, "create_management_token", "fuzz", "--scope", "write")
    # the same data dir as the commands: it holds the key pepper the digests were made with
    server = start_gateway({"DATABASE_URL": env["DATABASE_URL"], "GATEWAY_DATA_DIR": str(tmp), "REDIS_URL": "",
                            "GATEWAY_MANAGEMENT_RATE": "100000/m"}, tmp_dir=tmp)  # fmt: skip
    server.key, server.token, server.started = key, token, time.monotonic()
    yield server
    stop_gateway(server)


def _run(server, operation, headers: dict, check, mode) -> list[int]:
    session, calls = requests.Session(), []

    @settings(max_examples=MAX_EXAMPLES[operation.method.upper()], deadline=None, database=None,
              derandomize=DERANDOMIZE, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        generated = {k: v for k, v in (case.headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS}
        case.headers = {**generated, **headers}
        response = case.call(base_url=server.url, session=session, timeout=30)
        calls.append(response.status_code)
        try:
            check(response)
        except AssertionError as exc:
            log = server.log_path.read_text(errors="replace")
            start = log.rfind("Traceback")
            raise AssertionError(f"{exc}\n--- server log ---\n{log[start:start + 4000] if start >= 0 else log[-2000:]}")

    fuzz()
    assert calls, "the fuzzer sent nothing"
    return calls


MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("method", "path"), BATCH_OPERATIONS, ids=[f"{m} {p}" for m, p in BATCH_OPERATIONS])
def test_fuzz_batch_endpoints(isolated, method, path, mode):
    if time.monotonic() - isolated.started > BUDGET_SECONDS:
        pytest.skip(f"fuzz budget of {BUDGET_SECONDS} s spent before this operation")  # never counted as passed
    schema = schemathesis.openapi.from_dict(requests.get(isolated.url + "/openapi.json", timeout=10).json())
    if path.startswith("/v1/messages"):
        headers = {"x-api-key": isolated.key, "anthropic-version": "2023-06-01"}
    else:
        headers = {"authorization": f"Bearer {isolated.key}"}

    def check(response):
        if response.status_code == 200 and path.endswith("/results"):
            return  # JSONL
        check_answer(path, response)

    calls = _run(isolated, schema[path][method], headers, check, mode)
    assert 401 not in calls, "the fuzzer's requests must get past authentication"
    if mode == schemathesis.GenerationMode.POSITIVE and method == "GET" and "{" not in path:
        assert 200 in calls, sorted(set(calls))  # a list endpoint answers valid queries


@pytest.mark.parametrize("mode", MODES)
def test_fuzz_management_api(isolated, mode):
    document = requests.get(isolated.url + "/manage/v1/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    headers = {"authorization": f"Bearer {isolated.token}"}

    def check(response):
        text = response.content.decode("utf-8", errors="replace")
        context = f"{response.request.method} {response.request.url} -> {response.status_code} {text[:400]!r}"
        assert response.status_code < 500, context
        assert "Traceback" not in text, context
        content_type = (response.headers.get("content-type") or [""])[0]
        if response.status_code == 204 or (response.status_code == 200 and content_type.startswith("text/csv")):
            return
        assert content_type.startswith("application/json"), context
        if response.status_code >= 400:
            error = json.loads(text)["error"]
            assert isinstance(error["type"], str) and isinstance(error["message"], str), context

    seen = []
    for path, item in document["paths"].items():
        for method in item:
            seen += _run(isolated, schema[path][method], headers, check, mode)
    assert 401 not in seen, "the fuzzer's requests must get past authentication"
    if mode == schemathesis.GenerationMode.POSITIVE:
        assert sum(200 <= code < 300 for code in seen) > 20, sorted(set(seen))
