"""Claude on AWS Bedrock: Anthropic's Messages body in Bedrock's envelope, signed with SigV4.

    chat           POST {base}/model/{model id}/invoke  (stream: /invoke-with-response-stream)
    count_tokens   POST {base}/model/{model id}/count-tokens  {"input": {"invokeModel": {"body": "<the JSON>"}}}
The body is the Messages body without `model` (it is in the path) and `stream` (the path says it), with
`anthropic_version: bedrock-2023-05-31` and the accepted `anthropic-beta` values as an `anthropic_beta` list.
The model id is the route's remote model, e.g. `us.anthropic.claude-sonnet-4-5-20250929-v1:0`.

Credentials (the account's credential; the AWS_* environment when it has none):
    {"access_key_id": "AKIA…", "secret_access_key": "…", "session_token"?: "…", "region"?: "eu-west-1"}
    AKIA…:SECRET[:SESSION_TOKEN]          access keys: every call signed with botocore's SigV4Auth (service
                                          bedrock) over the final bytes
    any other value                       a Bedrock API key (ABSK…, bedrock-api-key-…): sent as a Bearer token
    empty                                 AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else
                                          AWS_BEARER_TOKEN_BEDROCK (the environment only: no instance metadata)
Region: the base URL's (bedrock-runtime.REGION.amazonaws.com), else the credential's "region", else
AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.

Answers are turned into Anthropic's bytes here (send), so everything downstream is the native path's: the
stream (application/vnd.amazon.eventstream, decoded by botocore's parser; each `chunk` event carries one Messages
stream event, base64) becomes Anthropic SSE, an exception event becomes an `event: error`, and an HTTP error
(`{"message"}` plus x-amzn-ErrorType) becomes Anthropic's error JSON with the matching status.
"""

import base64
import os
import re
from urllib.parse import quote

import httpx
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, ParserError

from ..errors import UpstreamError, kind_for_status
from ..formats.anthropic.errors import ERROR_TYPES
from .anthropic import accepted_betas
from .base import Upstream

VERSION = "bedrock-2023-05-31"
PATHS = {"chat": "/model/{model}/invoke", "stream": "/model/{model}/invoke-with-response-stream",
         "count_tokens": "/model/{model}/count-tokens"}  # fmt: skip
HOST_REGION = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")
EVENTSTREAM = "application/vnd.amazon.eventstream"
# Bedrock's exception names (x-amzn-ErrorType, an exception event's :exception-type) -> our error kinds; the
# Anthropic error type and status of a kind come from the one table (proxy/formats/anthropic/errors.py). Any other
# name is classed by its HTTP status, as every upstream's errors are (proxy/errors.py).
EXCEPTION_KINDS = {
    "throttlingexception": "rate_limit",
    "servicequotaexceededexception": "rate_limit",
    "modelnotreadyexception": "rate_limit",
    "validationexception": "invalid_request",
    "accessdeniedexception": "permission",
    "unrecognizedclientexception": "authentication",
    "expiredtokenexception": "authentication",
    "resourcenotfoundexception": "not_found",
    "modeltimeoutexception": "timeout",
    "serviceunavailableexception": "overloaded",
    "modelstreamerrorexception": "overloaded",  # the model broke off: worth a retry elsewhere
    "internalserverexception": "api_error",
}


class BedrockUpstream(Upstream):
    api = "anthropic"
    paths = PATHS

    def own_headers(self, provider, account, client_headers) -> dict[str, str]:
        return {"content-type": "application/json", "accept": "application/json", **dict(provider.extra_headers)}

    def request(self, provider, account, client_headers, payload: dict, operation: str = "chat"):
        body = {k: v for k, v in payload.items() if k not in ("model", "stream")}
        body["anthropic_version"] = VERSION
        betas = accepted_betas(client_headers.get("anthropic-beta"), provider.capabilities.anthropic_betas)
        if betas:
            body["anthropic_beta"] = betas.split(",")
        path = "stream" if payload.get("stream") and operation == "chat" else operation
        content = orjson.dumps(body)
        if operation == "count_tokens":  # the body InvokeModel would take, which needs max_tokens
            counted = orjson.dumps({"max_tokens": 1, **body}).decode()
            content = orjson.dumps({"input": {"invokeModel": {"body": counted}}})
        # ":" stays as it is: every HTTP stack here sends it raw (yarl decodes %3A), and the signature must cover
        # the path as it goes on the wire; "/" (an inference profile's ARN) is encoded, and stays so.
        model = quote(str(payload.get("model", "")), safe=":")
        url = provider.base_url + self.paths[path].format(model=model)
        headers = self.headers(provider, account, client_headers)
        if path == "stream":
            headers["accept"] = EVENTSTREAM
        return url, sign(url, headers, content, account.credential, provider.base_url), content

    async def send(self, provider, account, client_headers, payload: dict, operation: str = "chat") -> httpx.Response:
        response = await super().send(provider, account, client_headers, payload, operation)
        if response.status_code >= 400:
            return await _error_response(response)
        if operation == "count_tokens":
            try:
                counted = orjson.loads(await response.aread())["inputTokens"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise UpstreamError("Bedrock sent a count that is not {inputTokens}", status=502) from None
            return httpx.Response(200, json={"input_tokens": counted})
        if response.headers.get("content-type", "").startswith(EVENTSTREAM):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=SSEStream(response))
        return response


def credentials(credential: str, base_url: str) -> tuple[Credentials | None, str, str]:
    """(SigV4 keys or None, bearer API key or "", region) for an account credential (module docstring)."""
    region = ""
    keys: Credentials | None = None
    bearer = ""
    text = credential.strip()
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
            keys = Credentials(data["access_key_id"], data["secret_access_key"], data.get("session_token"))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise _bad_credential("a JSON credential needs access_key_id and secret_access_key") from None
        region = str(data.get("region") or "")
    elif ":" in text:
        key_id, secret, *token = text.split(":", 2)
        keys = Credentials(key_id, secret, token[0] if token else None)
    elif text:
        bearer = text
    elif os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        keys = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                           os.environ.get("AWS_SESSION_TOKEN"))
    else:
        bearer = os.environ.get("AWS_BEARER_TOKEN_BEDROCK", "")
    host = HOST_REGION.match(httpx.URL(base_url).host)
    region = (host.group(1) if host else "") or region or os.environ.get("AWS_REGION") \
        or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return keys, bearer, region


def sign(url: str, headers: dict[str, str], content: bytes, credential: str, base_url: str) -> dict[str, str]:
    """The headers with the call's authorization: SigV4 over method, URL, these headers and the body bytes (so
    nothing may change them after this), or the API key as a Bearer token."""
    keys, bearer, region = credentials(credential, base_url)
    if keys is None:
        if not bearer:
            raise _bad_credential("no credential: give the account one, or set AWS_* in the environment")
        return {**headers, "authorization": f"Bearer {bearer}"}
    signed = AWSRequest(method="POST", url=url, data=content, headers=headers)
    SigV4Auth(keys, "bedrock", region).add_auth(signed)
    return dict(signed.headers.items())


def _bad_credential(why: str) -> UpstreamError:
    return UpstreamError(f"Bedrock credential: {why}", kind="authentication", status=401)


def anthropic_error(name: str, message: str, status: int) -> tuple[int, dict]:
    """(status, Anthropic error object) for a Bedrock exception name (or none) and its HTTP status."""
    kind = EXCEPTION_KINDS.get(name.split(":", 1)[0].lower()) or kind_for_status(status)
    error_type, mapped = ERROR_TYPES.get(kind, ("api_error", None))
    return mapped or status, {"type": "error", "error": {"type": error_type, "message": message or f"Bedrock: {name}"}}


async def _error_response(response: httpx.Response) -> httpx.Response:
    raw = await response.aread()
    await response.aclose()
    try:
        data = orjson.loads(raw)
        message = str(data.get("message") or data.get("Message") or "")
    except (orjson.JSONDecodeError, AttributeError):
        message = raw.decode("utf-8", "replace")[:300]
    status, body = anthropic_error(response.headers.get("x-amzn-errortype", ""), message, response.status_code)
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("retry-after", "x-amzn-requestid")}
    return httpx.Response(status, headers=headers, json=body)


class SSEStream(httpx.AsyncByteStream):
    """An event-stream body read as Anthropic SSE: one `event: TYPE / data: JSON` per chunk event."""

    def __init__(self, response: httpx.Response):
        self.response = response

    async def __aiter__(self):
        buffer = EventStreamBuffer()
        async for data in self.response.aiter_raw():
            buffer.add_data(data)
            try:
                out = b"".join(sse_event(message.headers, message.payload) for message in buffer)
            except ParserError as exc:  # a bad frame (length, CRC): the stream is broken, as a cut connection is
                raise httpx.RemoteProtocolError(f"Bedrock event stream: {type(exc).__name__}") from None
            if out:
                yield out

    async def aclose(self) -> None:
        await self.response.aclose()


def sse_event(headers: dict, payload: bytes) -> bytes:
    """One event-stream message as Anthropic SSE bytes (b"" for an event the relay has no use for)."""
    kind = headers.get(":message-type")
    if kind == "event":
        if headers.get(":event-type") != "chunk":
            return b""
        event = base64.b64decode(orjson.loads(payload)["bytes"])
        name = orjson.loads(event).get("type", "message")
        return b"event: " + name.encode() + b"\ndata: " + event + b"\n\n"
    name = headers.get(":exception-type") or headers.get(":error-code") or "InternalServerException"
    try:
        message = str(orjson.loads(payload).get("message", "")) if payload else headers.get(":error-message", "")
    except (orjson.JSONDecodeError, AttributeError):
        message = payload.decode("utf-8", "replace")[:300]
    _, error = anthropic_error(name, message, 500)
    return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"
