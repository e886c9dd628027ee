"""Anthropic's OAuth, faked: the PKCE authorize step, a token endpoint (issue, refresh, expire, revoke) and a
Messages endpoint that takes only a live Bearer token, the OAuth beta and the identity system block.

    GET  /oauth/authorize?...code_challenge&state    -> {"code": "<code>#<state>"} (what the sign-in page shows)
    POST /v1/oauth/token                             authorization_code (checks the PKCE verifier) | refresh_token
                                                     (rotates both tokens; a used or revoked one -> 400
                                                     invalid_grant); answers after `refresh_delay_ms`
    POST /oauth-anthropic/v1/messages                401 unless a live access token; 400 without the beta or the
                                                     identity block; then the scripted answer (wire_anthropic)
    POST /_fake/oauth/seed    {"access_token", "refresh_token", "expires_in"}   tokens made without the flow
    POST /_fake/oauth/expire  {"access_token"?}      that token (or every one) no longer works
    POST /_fake/oauth/revoke  {"refresh_token"?}     that refresh token (or every one) is refused
    POST /_fake/oauth/config  {"refresh_delay_ms"?, "expires_in"?}
    GET  /_fake/oauth/stats   {"refreshes", "exchanges", "live_access_tokens"}
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import time

import orjson
from aiohttp import web

from . import wire_anthropic
from .wire_dialects import _variant

OAUTH_BETA = "oauth-2025-04-20"
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
JSON = "application/json"


class OAuthState:
    def __init__(self) -> None:
        self.access: dict[str, float] = {}  # token -> expiry (monotonic)
        self.refresh: set[str] = set()
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (challenge, state)
        self.refreshes = 0
        self.exchanges = 0
        self.refresh_delay = 0.0
        self.expires_in = 3600
        self.ids = itertools.count(1)

    def issue(self, expires_in: float | None = None) -> dict:
        n = next(self.ids)
        access, refresh = f"oat-access-{n:04d}-{time.time_ns()}", f"oat-refresh-{n:04d}-{time.time_ns()}"
        life = self.expires_in if expires_in is None else expires_in
        self.access[access] = time.monotonic() + life
        self.refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": life, "token_type": "Bearer"}


OAUTH = web.AppKey("oauth", OAuthState)


def _json(body, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=JSON)


async def authorize(request: web.Request) -> web.Response:
    state = request.app[OAUTH]
    if request.query.get("code_challenge_method") != "S256" or not request.query.get("code_challenge"):
        return _json({"error": "invalid_request"}, 400)
    code = f"code-{next(state.ids):04d}"
    state.codes[code] = (request.query["code_challenge"], request.query.get("state", ""))
    return _json({"code": f"{code}#{request.query.get('state', '')}"})


async def token(request: web.Request) -> web.Response:
    state = request.app[OAUTH]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _json({"error": "invalid_request"}, 400)
    grant = body.get("grant_type")
    if grant == "authorization_code":
        challenge, expected_state = state.codes.pop(body.get("code", ""), ("", ""))
        verifier = str(body.get("code_verifier", "")).encode()
        made = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if not challenge or made != challenge or body.get("state") != expected_state:
            return _json({"error": "invalid_grant", "error_description": "code or verifier mismatch"}, 400)
        state.exchanges += 1
        return _json(state.issue())
    if grant == "refresh_token":
        if state.refresh_delay:
            await asyncio.sleep(state.refresh_delay)
        if body.get("refresh_token") not in state.refresh:
            return _json({"error": "invalid_grant", "error_description": "refresh token revoked or used"}, 400)
        state.refresh.discard(body["refresh_token"])  # rotation: a refresh token works once
        state.refreshes += 1
        return _json(state.issue())
    return _json({"error": "unsupported_grant_type"}, 400)


async def messages(request: web.Request) -> web.StreamResponse:
    from .server import STATE, _error, _generate, _record

    state = request.app[OAUTH]
    raw = await request.read()  # aiohttp keeps it: _generate reads it again
    body = orjson.loads(raw) if raw else {}
    authorization = request.headers.get("authorization", "")
    bearer = authorization[7:] if authorization.startswith("Bearer ") else ""
    system = body.get("system") if isinstance(body, dict) else None
    first = system[0].get("text", "") if isinstance(system, list) and system and isinstance(system[0], dict) else ""
    if state.access.get(bearer, 0) <= time.monotonic():
        refusal = (401, "OAuth token has expired or is invalid")
    elif OAUTH_BETA not in request.headers.get("anthropic-beta", "").split(","):
        refusal = (400, "OAuth authentication requires the oauth beta")
    elif not first.startswith(IDENTITY):
        refusal = (400, "This credential is only authorized for use with Claude Code")
    else:
        return await _generate(request, OPEN, True)
    _record(request, request.app[STATE], body)  # refusals are recorded too
    return _error(wire_anthropic, refusal[0], "req_fake_oauth", refusal[1])


OPEN = _variant(wire_anthropic, auth_ok=lambda headers, key: True)  # the Bearer check above replaces the key check


async def seed(request: web.Request) -> web.Response:
    state, body = request.app[OAUTH], orjson.loads(await request.read())
    state.access[body["access_token"]] = time.monotonic() + float(body.get("expires_in", state.expires_in))
    state.refresh.add(body["refresh_token"])
    return _json({})


async def expire(request: web.Request) -> web.Response:
    state, body = request.app[OAUTH], orjson.loads(await request.read() or b"{}")
    for access in [body["access_token"]] if body.get("access_token") else list(state.access):
        state.access[access] = 0.0
    return _json({})


async def revoke(request: web.Request) -> web.Response:
    state, body = request.app[OAUTH], orjson.loads(await request.read() or b"{}")
    if body.get("refresh_token"):
        state.refresh.discard(body["refresh_token"])
    else:
        state.refresh.clear()
    return _json({})


async def configure(request: web.Request) -> web.Response:
    state, body = request.app[OAUTH], orjson.loads(await request.read() or b"{}")
    state.refresh_delay = float(body.get("refresh_delay_ms", state.refresh_delay * 1000)) / 1000
    state.expires_in = float(body.get("expires_in", state.expires_in))
    return _json({})


async def stats(request: web.Request) -> web.Response:
    state = request.app[OAUTH]
    live = sum(1 for expiry in state.access.values() if expiry > time.monotonic())
    return _json({"refreshes": state.refreshes, "exchanges": state.exchanges, "live_access_tokens": live})


def register(app: web.Application) -> None:
    app[OAUTH] = OAuthState()
    app.router.add_get("/oauth/authorize", authorize)
    app.router.add_post("/v1/oauth/token", token)
    app.router.add_post("/oauth-anthropic/v1/messages", messages)
    for path, handler in (("seed", seed), ("expire", expire), ("revoke", revoke), ("config", configure)):
        app.router.add_post(f"/_fake/oauth/{path}", handler)
    app.router.add_get("/_fake/oauth/stats", stats)
