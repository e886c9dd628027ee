"""Batch inputs larger than the model API's body limit, through a real server on a real port (daphne and uvicorn).

The two upload endpoints (POST /v1/files, POST /v1/messages/batches) take bodies up to GATEWAY_MAX_UPLOAD_BYTES;
every other path keeps GATEWAY_MAX_BODY_BYTES (proxy/errors.py body_limit). The server here runs the default
general limit (32 MB) and an upload limit of 48 MB, so a 40 MB batch file sits between the two:
- it is accepted by the openai SDK's files.create, and read back byte for byte;
- the server's peak RSS grows by well under twice the file (the upload is spooled to disk, never held twice);
- the same 40 MB to /v1/chat/completions is refused 413 in OpenAI's format;
- an upload over 48 MB is refused 413 at its headers, and one without a key 401, before the body is read.
"""

import json
import time

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.conftest import start_gateway, stop_gateway
from tests.e2e.test_abuse import raw_request

MB = 1024 * 1024
LIMITS = {"GATEWAY_MAX_BODY_BYTES": str(32 * MB), "GATEWAY_MAX_UPLOAD_BYTES": str(48 * MB)}


def jsonl(size: int) -> bytes:
    """Valid batch input lines (chat completions requests of ~10 KB each), `size` bytes or a line more."""
    lines, total, i = [], 0, 0
    while total < size:
        body = {"model": "gw-openai", "messages": [{"role": "user", "content": f"{i} " + "x" * 10_000}]}
        line = orjson.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body})
        lines.append(line + b"\n")
        total, i = total + len(line) + 1, i + 1
    return b"".join(lines)


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set so far (it only grows)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request, world, tmp_path_factory):
    running = start_gateway(LIMITS, tmp_dir=tmp_path_factory.mktemp("uploads"), server=request.param)
    yield running
    stop_gateway(running)


@pytest.fixture(scope="module")
def big_file() -> bytes:
    return jsonl(40 * MB)


def _openai(server, world, key="alpha") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=world.keys[key], max_retries=0, timeout=120)


def test_a_40_mb_batch_file_is_accepted_and_read_back(server, world, big_file):
    client = _openai(server, world)
    client.files.create(file=("warm.jsonl", jsonl(4 * MB), "application/jsonl"), purpose="batch")  # imports, pools
    before = peak_rss_mb(server.process.pid)
    started = time.monotonic()
    created = client.files.create(file=("big.jsonl", big_file, "application/jsonl"), purpose="batch")
    elapsed = time.monotonic() - started
    growth = peak_rss_mb(server.process.pid) - before
    print(f"\n{server.log_path.name} 40 MB upload: {elapsed:.2f} s, peak RSS growth {growth:.1f} MB")
    assert created.bytes == len(big_file) and created.purpose == "batch" and created.filename == "big.jsonl"
    assert client.files.retrieve(created.id).bytes == len(big_file)
    assert client.files.content(created.id).content == big_file
    assert growth < 60, f"peak RSS grew {growth:.1f} MB for a {len(big_file) / MB:.0f} MB upload"
    client.files.delete(created.id)


def test_the_same_40_mb_to_the_model_api_is_still_refused(server, world, big_file):
    content = big_file.decode()
    with pytest.raises(openai.APIStatusError) as refused:
        _openai(server, world).chat.completions.create(
            model="gw-openai", messages=[{"role": "user", "content": content}], max_tokens=5)
    assert refused.value.status_code == 413
    assert refused.value.body == {"message": f"request body exceeds {32 * MB} bytes", "type": "invalid_request_error",
                                  "param": None, "code": None}  # OpenAI's error object


def test_an_anthropic_batch_over_the_general_limit_is_read(server, world):
    """40 MB inline requests are read and validated (an unknown model: 404 in Anthropic's format), not refused 413."""
    client = anthropic.Anthropic(base_url=server.url, api_key=world.keys["alpha"], max_retries=0, timeout=120)
    params = {"model": "no-such-model", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * (40 * MB)}]}
    with pytest.raises(anthropic.APIStatusError) as refused:
        client.messages.batches.create(requests=[{"custom_id": "a", "params": params}])
    assert refused.value.status_code not in (413, 500), refused.value.body
    assert refused.value.body["type"] == "error", refused.value.body
    assert "no-such-model not found" in refused.value.body["error"]["message"], refused.value.body


@pytest.mark.parametrize("path", ["/v1/files", "/v1/messages/batches"])
def test_an_upload_over_the_upload_limit_is_refused_at_the_headers(server, world, path):
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {world.keys['alpha']}\r\n"
            f"x-api-key: {world.keys['alpha']}\r\nanthropic-version: 2023-06-01\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {49 * MB}\r\n\r\n")
    status, body, elapsed = raw_request(server.url, head)
    assert status == 413 and elapsed < 2.0, body
    # the whole error, delimited by its Content-Length (not chunked), so the client reads it before the close
    assert str(48 * MB) in json.loads(body)["error"]["message"]


def test_a_chunked_upload_is_refused_as_soon_as_it_passes_the_upload_limit(server, world):
    def chunks():
        for _ in range(64):
            yield b"x" * MB

    headers = {"Authorization": f"Bearer {world.keys['alpha']}", "Content-Type": "multipart/form-data; boundary=b"}
    try:
        response = httpx.post(server.url + "/v1/files", content=chunks(), headers=headers, timeout=30)
        assert response.status_code == 413, response.text[:300]
    except httpx.TransportError:
        pass  # the server answered and closed while the client was still sending


@pytest.mark.parametrize("path", ["/v1/files", "/v1/messages/batches"])
def test_a_large_upload_without_a_key_is_refused_before_its_body(server, path):
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {40 * MB}\r\n\r\n")
    status, body, elapsed = raw_request(server.url, head)
    assert status == 401 and elapsed < 2.0, body
