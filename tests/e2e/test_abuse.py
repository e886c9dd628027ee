"""Abuse against one real server process (127.0.0.1 only; every flood bounded in count AND time):

- a 320 MB body with no key gets its 401 without being read (from the headers alone; under daphne a twisted-level
  guard answers before twisted buffers the body), and the process's memory does not grow with it;
- floods of unauthenticated requests and of oversized bodies: memory stays bounded (RSS before and after), and
  a legitimate client keeps being served all along;
- repeated failures from one address are throttled (429 in the caller's format), shared between processes
  through Redis; a key the process knows as good is still served; failures are counted in a metric, logged at
  most once per 10 s, and never write a ledger row.
"""

import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from tests.conftest import start_gateway, stop_gateway
from tests.e2e.conftest import ledger_row

ANTHROPIC = {"anthropic-version": "2023-06-01"}
CHAT = {"model": "gw-openai", "messages": [{"role": "user", "content": "SAY: ok"}], "max_tokens": 20}
MB = 1024 * 1024
REDIS_DB = 11  # this module's own Redis database (others: 12, 13, 15 in other modules)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def raw_request(url: str, head: str, timeout: float = 5.0) -> tuple[int, bytes, float]:
    """Send only the request line and headers, then read the answer: (status, body, seconds to answer)."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    elapsed = time.monotonic() - started
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1], elapsed


def _length(data: bytes) -> int:
    match = re.search(rb"(?i)content-length: *(\d+)", data)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/chat/completions", "/v1/responses"])
def test_a_320_mb_body_without_a_key_is_refused_at_the_headers(world, path):
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {320 * MB}\r\n\r\n"
    status, body, elapsed = raw_request(world.url, head)
    assert status == 401, body
    assert elapsed < 2.0  # answered with no byte of the body sent
    assert b"missing API key" in body
    # with a well-formed but unknown key the database is asked first; still no byte of the body is needed
    head = head.replace("Host: x", "Host: x\r\nAuthorization: Bearer gh_" + "x" * 48)
    status, body, elapsed = raw_request(world.url, head)
    assert status == 401 and elapsed < 2.0, body  # looked up before the body (and before the size's 413)
    # a good key with that Content-Length: 413, still before the body
    head = head.replace("gh_" + "x" * 48, world.keys["alpha"])
    status, body, elapsed = raw_request(world.url, head)
    assert status == 413 and elapsed < 2.0, body


def test_a_chunked_body_with_an_unknown_key_is_refused_before_it_is_read(world):
    head = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" \
           "x-api-key: gh_" + "y" * 48 + "\r\n\r\n"
    status, body, elapsed = raw_request(world.url, head)  # not one chunk sent
    assert status == 401 and elapsed < 2.0, body
    assert b'"type":"error"' in body


def test_a_320_mb_body_sent_in_full_costs_no_memory(world):
    pid = world.server.process.pid
    before = rss_mb(pid)

    def body():
        block = b" " * MB
        for _ in range(320):
            yield block

    started = time.monotonic()
    headers = {"content-length": str(320 * MB), "content-type": "application/json"}
    try:
        response = httpx.post(world.url + "/v1/chat/completions", content=body(), headers=headers, timeout=30)
        assert response.status_code == 401
    except httpx.TransportError:
        pass  # the server closed the connection after answering, while the client was still sending
    assert time.monotonic() - started < 20
    assert rss_mb(pid) - before < 40, (before, rss_mb(pid))
    assert httpx.get(world.url + "/health").status_code == 200


def test_floods_keep_memory_bounded_and_legitimate_traffic_served(world):
    pid = world.server.process.pid
    key = world.keys["alpha"]
    served, failures, stop = [], [], threading.Event()

    def legitimate():
        with httpx.Client(base_url=world.url, timeout=30) as client:
            while not stop.is_set():
                response = client.post("/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"})
                (served if response.status_code == 200 else failures).append(response.status_code)
                time.sleep(0.05)

    def unauthenticated(i: int) -> int:
        secret = "gh_" + f"{i:048d}" if i % 3 else ("nope" if i % 2 else "")
        headers = {"authorization": f"Bearer {secret}"} if secret else {}
        return httpx.post(world.url + "/v1/messages", json=CHAT, headers={**ANTHROPIC, **headers}, timeout=30).status_code

    def oversized(i: int) -> int:
        body = b'{"model": "gw-openai", "pad": "' + b"a" * (3 * MB) + b'"}'
        try:
            return httpx.post(world.url + "/v1/chat/completions", content=body,
                              headers={"authorization": f"Bearer {key}"}, timeout=30).status_code
        except httpx.TransportError:
            return 413  # closed after the answer while still sending

    warm = [unauthenticated(i) for i in range(20)] + [oversized(i) for i in range(3)]  # caches and pools warm
    assert set(warm) <= {401, 413}
    before = rss_mb(pid)
    watcher = threading.Thread(target=legitimate)
    watcher.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(unauthenticated, range(240)))
            big = list(pool.map(oversized, range(16)))
    finally:
        stop.set()
        watcher.join(30)
    elapsed = time.monotonic() - started
    assert elapsed < 90
    assert set(statuses) == {401}, set(statuses)
    assert set(big) == {413}, set(big)
    assert failures == [] and len(served) >= 5, (failures, len(served))
    growth = rss_mb(pid) - before
    assert growth < 60, f"RSS grew {growth:.0f} MB over the floods"


# --- throttling, metric, log line, ledger: servers of their own --------------------------------------------


@pytest.fixture
def redis_db():
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{REDIS_DB}"
    client.flushdb()


def _throttled_server(tmp_path, **env):
    return start_gateway({"GATEWAY_AUTH_FAILURE_LIMIT": "5", "GATEWAY_AUTH_FAILURE_WINDOW_SECONDS": "60", **env},
                         tmp_dir=tmp_path)


def _bad(url: str, i: int, api: str = "openai") -> httpx.Response:
    if api == "anthropic":
        return httpx.post(url + "/v1/messages", json=CHAT, headers={**ANTHROPIC, "x-api-key": f"gh_bad{i:045d}"})
    return httpx.post(url + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer gh_bad{i:045d}"})


def test_repeated_failures_are_throttled_per_address_shared_through_redis(world, committed, tmp_path, redis_db):
    from usage.models import UsageRecord

    server = _throttled_server(tmp_path / "a", REDIS_URL=redis_db)
    other = _throttled_server(tmp_path / "b", REDIS_URL=redis_db)
    try:
        good = {"authorization": f"Bearer {world.keys['alpha']}"}
        first = httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers=good)
        assert first.status_code == 200, first.text
        ledger_row(first.headers["x-request-id"])  # written (asynchronously) before counting
        rows_before = UsageRecord.objects.count()
        statuses = [_bad(server.url, i).status_code for i in range(5)]
        assert statuses == [401] * 5
        time.sleep(0.2)  # the count is recorded right after the answer
        refused = _bad(server.url, 99)
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] in ("rate_limit_error", "rate_limit_exceeded", "requests"), refused.text
        assert refused.headers["retry-after"] == "60"
        anthropic_refused = _bad(server.url, 100, "anthropic")
        assert anthropic_refused.status_code == 429 and anthropic_refused.json()["type"] == "error"
        no_key = httpx.post(server.url + "/v1/chat/completions", json=CHAT)  # syntactic failures are still 401s
        assert no_key.status_code == 401
        # a key this process has seen good is still served from the throttled address
        last = httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers=good)
        assert last.status_code == 200
        ledger_row(last.headers["x-request-id"])
        # the other process has seen no failure itself: its first one finds the shared count past the limit
        assert _bad(other.url, 10).status_code == 401
        time.sleep(0.2)
        assert _bad(other.url, 11).status_code == 429
        time.sleep(0.5)
        assert UsageRecord.objects.count() == rows_before + 1  # the second good request; none for the refused
        metrics = httpx.get(server.url + "/metrics").text
        counted = {m.group(1): float(m.group(2)) for m in re.finditer(r'gateway_auth_failures_total\{reason="(\w+)"\} ([\d.]+)', metrics)}
        assert counted.get("invalid") == 5 and counted.get("throttled") == 2 and counted.get("missing") == 1, counted
    finally:
        stop_gateway(server)
        stop_gateway(other)
    log = server.log_path.read_text()
    lines = [line for line in log.splitlines() if "API request refused" in line]
    assert 1 <= len(lines) <= 2, lines  # one line per 10 s for all of them, saying how many more
    assert "gh_bad" not in log  # a presented secret is never logged


def test_without_redis_a_process_counts_alone(world, tmp_path):
    server = _throttled_server(tmp_path, REDIS_URL="")
    try:
        assert [_bad(server.url, i).status_code for i in range(5)] == [401] * 5
        time.sleep(0.2)
        assert _bad(server.url, 5).status_code == 429
    finally:
        stop_gateway(server)


@pytest.mark.parametrize("server_kind", ["uvicorn"])
def test_uvicorn_refuses_at_the_headers_too_and_serves_a_10_mb_string(world, tmp_path, server_kind):
    limits = {"GATEWAY_AUTH_FAILURE_LIMIT": "0", "GATEWAY_MAX_BODY_BYTES": str(16 * MB)}
    server = start_gateway(limits, tmp_dir=tmp_path, server=server_kind)
    try:
        # a 10 MB string under a 16 MB limit is served, translated and passed through
        for model in ("gw-openai", "gw-anthropic"):
            big = {**CHAT, "model": model, "metadata": {"user_id": "u" * (10 * MB)}} if model == "gw-anthropic" else \
                {**CHAT, "user": "u" * (10 * MB)}
            headers = {"x-api-key": world.keys["alpha"], **ANTHROPIC}
            response = httpx.post(server.url + "/v1/messages", json=big, headers=headers, timeout=60)
            assert response.status_code == 200, response.text[:300]
        head = f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: {320 * MB}\r\n\r\n"
        status, body, elapsed = raw_request(server.url, head)
        assert status == 401 and elapsed < 2.0, body
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {world.keys['alpha']}\r\n" \
               f"Content-Length: {320 * MB}\r\n\r\n"
        status, body, elapsed = raw_request(server.url, head)
        assert status == 413 and elapsed < 2.0, body
    finally:
        stop_gateway(server)
