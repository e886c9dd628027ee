"""The Bedrock and Vertex provider kinds without a server: event-stream decoding (the fake's encoder, written
from the framing spec, read by botocore's parser), SigV4 signing (checked by recomputing the signature as the
fake does), credential and region rules, Bedrock errors in Anthropic's shape, Vertex URLs."""

import asyncio

import httpx
import orjson
import pytest

from proxy.errors import UpstreamError
from proxy.upstreams import bedrock, vertex
from tests.fakes.upstream.wire_bedrock import KEYS, chunk, exception, frame, signature_problem

AKID = next(iter(KEYS))
EVENTS = [
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":5}}}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"h\\u00e9"}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]


class Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces):
        self.pieces = pieces

    async def __aiter__(self):
        for piece in self.pieces:
            yield piece


def relayed(body: bytes, size: int) -> bytes:
    """What the relay reads from a Bedrock stream delivered in `size`-byte pieces."""
    upstream = httpx.Response(200, stream=Pieces([body[i:i + size] for i in range(0, len(body), size)]))
    sse = httpx.Response(200, stream=bedrock.SSEStream(upstream))

    async def read():
        return b"".join([piece async for piece in sse.aiter_raw()])

    return asyncio.run(read())


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_chunk_events_become_the_anthropic_sse_they_carry_however_the_bytes_arrive(size):
    body = b"".join(chunk(event) for event in EVENTS)
    assert relayed(body, size) == b"".join(EVENTS)


def test_a_frame_with_a_bad_crc_breaks_the_stream_like_a_cut_connection():
    framed = bytearray(chunk(EVENTS[0]))
    framed[-1] ^= 0xFF
    with pytest.raises(httpx.RemoteProtocolError):
        relayed(bytes(framed), 64)


def test_an_exception_event_becomes_an_anthropic_error_event():
    out = relayed(chunk(EVENTS[0]) + exception("throttlingException", "Too many tokens"), 4096)
    name, data = out.split(b"\n\n")[1].split(b"\n")
    assert name == b"event: error"
    assert orjson.loads(data[6:]) == {"type": "error", "error": {"type": "rate_limit_error", "message": "Too many tokens"}}


def test_events_other_than_chunks_are_dropped():
    other = frame({":event-type": "metadata", ":content-type": "application/json", ":message-type": "event"}, b"{}")
    assert relayed(other + chunk(EVENTS[2]), 4096) == EVENTS[2]


@pytest.mark.parametrize("name,status,expected", [
    ("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", 429, (429, "rate_limit_error")),
    ("ValidationException", 400, (400, "invalid_request_error")),
    ("AccessDeniedException", 403, (403, "permission_error")),
    ("ServiceUnavailableException", 503, (529, "overloaded_error")),
    ("", 500, (500, "api_error")),
    ("", 404, (404, "not_found_error")),
])  # fmt: skip
def test_bedrock_errors_map_to_anthropic_types_and_statuses(name, status, expected):
    mapped, body = bedrock.anthropic_error(name, "why", status)
    assert (mapped, body["error"]["type"]) == expected and body["error"]["message"] == "why"


def signed(body: bytes, url="http://127.0.0.1:9/model/us.anthropic.claude-v1:0/invoke", credential=None):
    credential = credential or orjson.dumps({"access_key_id": AKID, "secret_access_key": KEYS[AKID]}).decode()
    headers = bedrock.sign(url, {"content-type": "application/json"}, body, credential, "http://127.0.0.1:9")
    return {"host": "127.0.0.1:9", **{k.lower(): v for k, v in headers.items()}}  # the Host the server sees


def test_the_sigv4_signature_covers_the_body_and_the_path():
    url = "http://127.0.0.1:9/model/us.anthropic.claude-v1:0/invoke"
    headers = signed(b'{"a":1}', url)
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]
    assert signature_problem("POST", url, headers, b'{"a":1}', "") is None
    assert "does not match" in signature_problem("POST", url, headers, b'{"a":2}', "")
    assert "does not match" in signature_problem("POST", url.replace("invoke", "invoke-with-response-stream"),
                                                 headers, b'{"a":1}', "")


def test_a_session_token_is_signed_and_sent():
    headers = signed(b"{}", credential=f"{AKID}:{KEYS[AKID]}:SESSION-TOKEN")
    assert headers["x-amz-security-token"] == "SESSION-TOKEN"
    assert "x-amz-security-token" in headers["authorization"].split("SignedHeaders=")[1].split(",")[0]


def test_credential_forms_and_where_the_region_comes_from(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    keys, bearer, region = bedrock.credentials('{"access_key_id": "A", "secret_access_key": "S", "region": "eu-west-3"}',
                                               "http://127.0.0.1:9")
    assert (keys.access_key, keys.secret_key, bearer, region) == ("A", "S", "", "eu-west-3")
    keys, _, region = bedrock.credentials("A:S", "https://bedrock-runtime.ap-northeast-1.amazonaws.com")
    assert (keys.token, region) == (None, "ap-northeast-1")  # the endpoint's region wins
    assert bedrock.credentials("ABSKbmFtZQ==", "http://127.0.0.1:9") == (None, "ABSKbmFtZQ==", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "ca-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET")
    keys, _, region = bedrock.credentials("", "http://127.0.0.1:9")
    assert (keys.access_key, region) == ("ENVKEY", "ca-central-1")
    with pytest.raises(UpstreamError) as caught:
        bedrock.credentials('{"access_key_id": "A"}', "http://127.0.0.1:9")
    assert caught.value.kind == "authentication"


def test_no_credential_anywhere_is_an_authentication_error(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UpstreamError) as caught:
        bedrock.sign("http://127.0.0.1:9/model/m/invoke", {}, b"{}", "", "http://127.0.0.1:9")
    assert caught.value.kind == "authentication" and caught.value.status == 401


class _Account:
    id, credential = 99, orjson.dumps({"project_id": "proj"}).decode()


def test_vertex_prefix_from_the_host_region_and_the_keys_project(monkeypatch):
    monkeypatch.setattr(vertex, "_creds", lambda account: type("C", (), {"project_id": "proj"}))
    assert vertex.prefix("https://us-east5-aiplatform.googleapis.com", _Account) == \
        "https://us-east5-aiplatform.googleapis.com/v1/projects/proj/locations/us-east5"
    assert vertex.prefix("https://aiplatform.googleapis.com", _Account).endswith("/projects/proj/locations/global")
    pinned = "https://europe-west1-aiplatform.googleapis.com/v1/projects/other/locations/europe-west1"
    assert vertex.prefix(pinned, _Account) == pinned


def test_a_vertex_credential_that_is_not_a_service_account_key_is_an_authentication_error():
    with pytest.raises(UpstreamError) as caught:
        vertex.token(_Account)
    assert caught.value.kind == "authentication" and "service-account JSON key" in caught.value.message
