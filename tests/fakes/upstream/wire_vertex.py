"""Claude on Google Vertex AI, faked: Google's OAuth2 token endpoint for service accounts and the Anthropic
publisher's rawPredict endpoints; the answers come from the Anthropic script engine (wire_anthropic).

    GET  /_fake/vertex/service_account     a service-account JSON key (RSA key made at start, project
                                           "fake-project", token_uri pointing at this server)
    POST /vertex/token                     grant_type jwt-bearer: the assertion's RS256 signature is checked with
                                           that key, its aud must be Google's token endpoint (google-auth's,
                                           whatever the token_uri) and its scope cloud-platform;
                                           issues ya29.fake-N tokens living `expires_in` seconds (default 3600)
    POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict | :streamRawPredict
                                           Bearer a live token, else 401 UNAUTHENTICATED (Google's error JSON);
                                           the body without `model`, with anthropic_version "vertex-2023-10-16"
                                           (else 400); SSE exactly as Anthropic's
    POST .../publishers/anthropic/models/count-tokens:rawPredict   {"input_tokens": n} (the body keeps `model`)
    POST /_fake/vertex/expire              every token issued so far stops working (an expired token)
    POST /_fake/vertex/config {"expires_in"}
    GET  /_fake/vertex/stats               {"tokens_issued", "refused"}
"""

from __future__ import annotations

import itertools
import time

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from . import wire_anthropic
from .wire_dialects import _variant
from .wire_oauth import _json

VERSION = "vertex-2023-10-16"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "https://oauth2.googleapis.com/token"  # what google-auth signs into every service-account assertion
PROJECT = "fake-project"


class VertexState:
    def __init__(self) -> None:
        self.private_pem, self.public_pem = "", b""  # made on first use: a key costs ~0.1 s of CPU
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.ids = itertools.count(1)
        self.expires_in = 3600
        self.refused = 0

    def key(self) -> None:
        if not self.private_pem:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode()
            self.public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)


VERTEX = web.AppKey("vertex", VertexState)


async def service_account(request: web.Request) -> web.Response:
    state = request.app[VERTEX]
    state.key()
    return _json({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "fake-key-1",
        "private_key": state.private_pem, "client_email": f"gateway@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"http://{request.host}/vertex/token",
    })


async def token(request: web.Request) -> web.Response:
    state = request.app[VERTEX]
    form = await request.post()
    if form.get("grant_type") != JWT_BEARER or not state.public_pem:
        return _json({"error": "unsupported_grant_type"}, 400)
    try:
        claims = jwt.decode(str(form.get("assertion", "")), certs=state.public_pem,
                            audience=AUDIENCE)
    except ValueError as e:
        return _json({"error": "invalid_grant", "error_description": f"Invalid JWT: {e}"}, 400)
    if SCOPE not in str(claims.get("scope", "")).split():
        return _json({"error": "invalid_scope"}, 400)
    access = f"ya29.fake-{next(state.ids)}-{time.time_ns()}"
    state.tokens[access] = time.monotonic() + state.expires_in
    return _json({"access_token": access, "expires_in": state.expires_in, "token_type": "Bearer"})


def envelope(request: web.Request, body) -> tuple[str | None, dict]:
    if not isinstance(body, dict) or body.get("anthropic_version") != VERSION:
        return f"anthropic_version: expected {VERSION}", body
    if "model" in body:
        return "model: not allowed in the body (it is in the URL)", body
    return None, {**body, "model": request.match_info["model_action"].rpartition(":")[0]}


OPEN = _variant(wire_anthropic, auth_ok=lambda headers, key: True, envelope=envelope)


async def predict(request: web.Request) -> web.StreamResponse:
    from .server import STATE, _generate, _record

    state = request.app[VERTEX]
    authorization = request.headers.get("authorization", "")
    if state.tokens.get(authorization.removeprefix("Bearer "), 0) <= time.monotonic():
        state.refused += 1
        _record(request, request.app[STATE], None)
        return _json({"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "Request had invalid "
                                "authentication credentials. Expected OAuth 2 access token."}}, 401)
    model, _, action = request.match_info["model_action"].rpartition(":")
    if model == "count-tokens" and action == "rawPredict":
        return await _count(request)
    if action not in ("rawPredict", "streamRawPredict"):
        return _json({"error": {"code": 404, "status": "NOT_FOUND", "message": f"unknown method {action}"}}, 404)
    return await _generate(request, OPEN, True)


async def _count(request: web.Request) -> web.Response:
    from .server import STATE, _record

    body = orjson.loads(await request.read())
    _record(request, request.app[STATE], body)
    if body.get("anthropic_version") != VERSION or not isinstance(body.get("model"), str):
        return _json({"type": "error", "error": {"type": "invalid_request_error", "message": "model required"}}, 400)
    return _json({"input_tokens": wire_anthropic.count_tokens(body)})


async def expire(request: web.Request) -> web.Response:
    state = request.app[VERTEX]
    for access in state.tokens:
        state.tokens[access] = 0.0
    return _json({})


async def configure(request: web.Request) -> web.Response:
    state, body = request.app[VERTEX], orjson.loads(await request.read() or b"{}")
    state.expires_in = int(body.get("expires_in", state.expires_in))
    return _json({})


async def stats(request: web.Request) -> web.Response:
    state = request.app[VERTEX]
    return _json({"tokens_issued": len(state.tokens), "refused": state.refused})


def register(app: web.Application) -> None:
    app[VERTEX] = VertexState()
    app.router.add_get("/_fake/vertex/service_account", service_account)
    app.router.add_post("/vertex/token", token)
    app.router.add_post("/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{model_action}", predict)
    app.router.add_post("/_fake/vertex/expire", expire)
    app.router.add_post("/_fake/vertex/config", configure)
    app.router.add_get("/_fake/vertex/stats", stats)
