"""Claude on AWS Bedrock, faked as Bedrock Runtime speaks it; the answers come from the Anthropic script engine
(wire_anthropic), so SAY:, THINK:, USE_TOOL:, FAIL: ... work as on /v1/messages.

    POST /model/{modelId}/invoke                       the Messages body without `model`/`stream`, with
                                                       anthropic_version "bedrock-2023-05-31" (else 400
                                                       ValidationException); answers the Message JSON
    POST /model/{modelId}/invoke-with-response-stream  application/vnd.amazon.eventstream: one binary message
                                                       per Anthropic stream event (prelude: total length,
                                                       headers length, prelude CRC32; headers; payload
                                                       {"bytes": base64 of the event JSON}; message CRC32);
                                                       FAIL: midstream -> a modelStreamErrorException message
    POST /model/{modelId}/count-tokens                 {"input": {"invokeModel": {"body": "<JSON>"}}} ->
                                                       {"inputTokens": n} (wire_anthropic's count)
Auth: SigV4 (service bedrock), checked by recomputing the signature with botocore for the secret of the access
key id in KEYS, over the method, the raw path, the signed headers and the body bytes: a mismatch is 403
InvalidSignatureException; or `Authorization: Bearer <the server key>` (a Bedrock API key).
Errors: {"message"} with x-amzn-ErrorType (FAIL: 429 -> ThrottlingException, 400 -> ValidationException, ...).
"""

from __future__ import annotations

import base64
import re
import struct
import zlib

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from . import wire_anthropic
from .wire_dialects import _variant

VERSION = "bedrock-2023-05-31"
KEYS = {"AKIAFAKEBEDROCK": "fake-bedrock-secret"}  # access key id -> secret access key
EVENTSTREAM = "application/vnd.amazon.eventstream"
EXCEPTIONS = {400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException",
              404: "ResourceNotFoundException", 413: "ValidationException", 429: "ThrottlingException",
              500: "InternalServerException", 503: "ServiceUnavailableException",
              529: "ServiceUnavailableException"}  # fmt: skip
MESSAGES = {429: "Too many requests, please wait before trying again.",
            503: "Bedrock is unable to process your request."}  # fmt: skip
CREDENTIAL = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                        r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")  # fmt: skip


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32 of both), headers (name length,
    name, type 7 = string, value length, value), payload, CRC32 of everything before it."""
    encoded = b"".join(struct.pack("B", len(n)) + n.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
                       for n, v in headers.items())
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def chunk(sse_event: bytes) -> bytes:
    """An Anthropic SSE event as Bedrock's `chunk` event (the event JSON, base64, in {"bytes"})."""
    data = next(line[6:] for line in sse_event.split(b"\n") if line.startswith(b"data: "))
    payload = orjson.dumps({"bytes": base64.b64encode(data).decode(), "p": "abcdefgh"})
    return frame({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload)


def exception(name: str, message: str) -> bytes:
    return frame({":exception-type": name, ":content-type": "application/json", ":message-type": "exception"},
                 orjson.dumps({"message": message}))


def render_stream(p, ctx) -> tuple[list[bytes], int]:
    events, cut = wire_anthropic.render_stream(p, ctx)
    return [chunk(event) for event in events], cut


def envelope(request: web.Request, body) -> tuple[str | None, dict]:
    """Bedrock's body -> the Messages body the script engine reads (model and stream from the path)."""
    if not isinstance(body, dict) or body.get("anthropic_version") != VERSION:
        return f"anthropic_version: expected {VERSION}", body
    if "model" in body or "stream" in body:
        return "extraneous key [model] is not permitted" if "model" in body else "extraneous key [stream]", body
    stream = request.path.endswith("/invoke-with-response-stream")
    return None, {**body, "model": request.match_info["model"], "stream": stream}


BEDROCK = _variant(
    wire_anthropic, auth_ok=lambda headers, key: True, envelope=envelope, render_stream=render_stream,
    STREAM_CONTENT_TYPE=EVENTSTREAM, REQUEST_ID_HEADER="x-amzn-RequestId",
    error_body=lambda status, message, rid: orjson.dumps({"message": message or MESSAGES.get(status, "Bad request")}),
    error_headers=lambda status: {"x-amzn-ErrorType": f"{EXCEPTIONS.get(status, 'ValidationException')}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
    stream_error=lambda rid: exception("modelStreamErrorException", "The model stream was interrupted."),
)


def signature_problem(method: str, url: str, headers, raw: bytes, key: str) -> str | None:
    """None when a call is signed right (SigV4 for a known key over this method, URL as received, signed headers
    and body; or the Bedrock API key as a Bearer token); else why not, in Bedrock's words."""
    authorization = headers.get("authorization", "")
    if key and authorization == f"Bearer {key}":
        return None
    found = CREDENTIAL.match(authorization)
    if found is None:
        return "Authorization header requires a SigV4 Credential, SignedHeaders and Signature"
    key_id, day, region, service, signed_names, signature = found.groups()
    if key_id not in KEYS or service != "bedrock":
        return "The security token included in the request is invalid."
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(day):
        return "X-Amz-Date does not match the credential scope"
    again = AWSRequest(method=method, url=url, data=raw,
                       headers={name: headers.get(name, "") for name in signed_names.split(";")})
    again.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(key_id, KEYS[key_id], headers.get("x-amz-security-token")), service, region)
    if auth.signature(auth.string_to_sign(again, auth.canonical_request(again)), again) != signature:
        return "The request signature we calculated does not match the signature you provided."
    return None


async def _authorized(request: web.Request):
    """(raw body, None) when signed right; else (raw, the 403 Bedrock answers)."""
    from .server import STATE, _error, _record

    raw = await request.read()  # aiohttp keeps it: _generate reads it again
    url = f"{request.scheme}://{request.host}{request.raw_path}"
    problem = signature_problem(request.method, url, request.headers, raw, request.app[STATE].key)
    if problem is None:
        return raw, None
    _record(request, request.app[STATE], None)
    refusal = _error(BEDROCK, 403, "fake-bedrock", problem)
    refusal.headers["x-amzn-ErrorType"] = "InvalidSignatureException:"
    return raw, refusal


async def invoke(request: web.Request) -> web.StreamResponse:
    from .server import _generate

    _, refusal = await _authorized(request)
    return refusal or await _generate(request, BEDROCK, True)


async def count_tokens(request: web.Request) -> web.Response:
    from .server import STATE, _error, _record

    raw, refusal = await _authorized(request)
    if refusal:
        return refusal
    _record(request, request.app[STATE], orjson.loads(raw))
    try:
        inner = orjson.loads(orjson.loads(raw)["input"]["invokeModel"]["body"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return _error(BEDROCK, 400, "fake-bedrock", "input.invokeModel.body: a JSON string is required")
    return web.Response(body=orjson.dumps({"inputTokens": wire_anthropic.count_tokens(inner)}),
                        content_type="application/json")


def register(app: web.Application) -> None:
    app.router.add_post("/model/{model}/invoke", invoke)
    app.router.add_post("/model/{model}/invoke-with-response-stream", invoke)
    app.router.add_post("/model/{model}/count-tokens", count_tokens)
