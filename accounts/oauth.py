"""Anthropic OAuth accounts (ProviderAccount.kind "anthropic_oauth"): connecting one, and keeping its token fresh.

Connecting is the PKCE authorization-code flow: `connect_start` stores a verifier (encrypted) and returns the
authorize URL the operator opens; Anthropic's page then shows a code (`code#state`) that the operator pastes into
`connect_finish` (the admin's Connect page, or `manage.py oauth_start` / `oauth_finish`).

On the request path the access token is the account's credential. `usable_token` costs one comparison while
the token has more than GATEWAY_OAUTH_REFRESH_MARGIN_SECONDS to live; after that, or when the upstream answers
401 (`refresh`), one process refreshes it:

    lock      Redis `SET NX` on gh:oauth:lock:<account> when REDIS_URL is set (one refresh across processes),
              an asyncio lock per account otherwise
    re-read   the row, under the lock: a token another process already renewed is used as it is
    refresh   POST the token endpoint; the new tokens are written (encrypted) with expiry and refresh time
    failure   last_error is written and OAuthError raised; the caller (proxy/attempts.py) books it on the
              breaker as a refused credential, so the route fails over to its other accounts

The secrets never reach a log line or an error message. Plain values in, plain values out: accounts imports
nothing from proxy.
"""

import asyncio
import base64
import hashlib
import secrets
import time
import weakref
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from urllib.parse import urlencode

import httpx
import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from . import crypto
from .models import ProviderAccount

SCOPES = "org:create_api_key user:profile user:inference"
LOCK_SECONDS = 30.0
TOKEN_TIMEOUT = 20.0


class OAuthError(Exception):
    """A refresh or code exchange failed; the message is safe to show (no secrets)."""


# --- connecting (admin and commands; synchronous) ---------------------------------------------------------------


def connect_start(account: ProviderAccount) -> str:
    """A new PKCE verifier and state for this account (kept encrypted until the code comes back); the URL to open."""
    verifier = secrets.token_urlsafe(64)
    state = secrets.token_urlsafe(24)
    account.oauth_pending_encrypted = crypto.encrypt(orjson.dumps({"verifier": verifier, "state": state}).decode())
    account.save(update_fields=["oauth_pending_encrypted"])
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "code": "true", "client_id": settings.GATEWAY_OAUTH_CLIENT_ID, "response_type": "code",
        "redirect_uri": settings.GATEWAY_OAUTH_REDIRECT_URI, "scope": SCOPES, "code_challenge": challenge,
        "code_challenge_method": "S256", "state": state,
    }  # fmt: skip
    return f"{settings.GATEWAY_OAUTH_AUTHORIZE_URL}?{urlencode(query)}"


def connect_finish(account: ProviderAccount, pasted: str) -> datetime:
    """Exchange the pasted `code#state` for tokens and store them; returns their expiry."""
    if not account.oauth_pending_encrypted:
        raise OAuthError("no connection in progress for this account: start one first")
    pending = orjson.loads(crypto.decrypt(account.oauth_pending_encrypted))
    code, _, state = pasted.strip().partition("#")
    if not code or (state and state != pending["state"]):
        raise OAuthError("this code does not belong to the connection started last; start again")
    payload = {
        "grant_type": "authorization_code", "code": code, "state": pending["state"],
        "client_id": settings.GATEWAY_OAUTH_CLIENT_ID, "redirect_uri": settings.GATEWAY_OAUTH_REDIRECT_URI,
        "code_verifier": pending["verifier"],
    }  # fmt: skip
    try:
        with httpx.Client(timeout=TOKEN_TIMEOUT) as client:
            tokens = _tokens_from(client.post(settings.GATEWAY_OAUTH_TOKEN_URL, json=payload))
    except httpx.HTTPError as e:
        raise OAuthError(f"token endpoint unreachable: {type(e).__name__}") from None
    account.oauth_pending_encrypted = ""
    return _store(account, tokens)


# --- on the request path (async) ----------------------------------------------------------------------------------

_fresh: dict[int, tuple[str, float]] = {}  # account id -> (token, expiry) renewed by this process


async def usable_token(account_id: int, token: str, expires_at: float) -> str:
    """The account's access token, refreshed first when it expires within the margin."""
    margin = settings.GATEWAY_OAUTH_REFRESH_MARGIN_SECONDS
    now = time.time()
    if expires_at - margin > now:
        return token
    renewed = _fresh.get(account_id)
    if renewed is not None and renewed[1] - margin > now:
        return renewed[0]
    return await refresh(account_id, stale=token)


async def refresh(account_id: int, *, stale: str) -> str:
    """A token other than `stale` (the one that expired or was refused): another process's if it already renewed
    it, else one this process gets from the token endpoint. Raises OAuthError."""
    for _ in range(3):
        async with _lock(account_id) as owner:
            row = await _load(account_id)
            if row is None:
                raise OAuthError("the account no longer exists")
            expires = row.oauth_expires_at.timestamp() if row.oauth_expires_at else 0.0
            if row.credential_encrypted and crypto.decrypt(row.credential_encrypted) != stale and expires > time.time():
                return _remember(account_id, crypto.decrypt(row.credential_encrypted), expires)
            if owner:
                return await _refresh_row(row)
    raise OAuthError("another process held the refresh lock too long")


async def _refresh_row(row: ProviderAccount) -> str:
    if not row.oauth_refresh_encrypted:
        await _failed(row.id, "no refresh token: connect the account again")
    payload = {"grant_type": "refresh_token", "refresh_token": crypto.decrypt(row.oauth_refresh_encrypted),
               "client_id": settings.GATEWAY_OAUTH_CLIENT_ID}  # fmt: skip
    try:
        async with httpx.AsyncClient(timeout=TOKEN_TIMEOUT) as client:
            tokens = _tokens_from(await client.post(settings.GATEWAY_OAUTH_TOKEN_URL, json=payload))
    except OAuthError as e:
        await _failed(row.id, f"token refresh failed: {e}")
    except httpx.HTTPError as e:
        await _failed(row.id, f"token refresh failed: endpoint unreachable ({type(e).__name__})")
    expiry = await sync_to_async(_store_by_id, thread_sensitive=False)(row.id, tokens)
    return _remember(row.id, tokens.access, expiry.timestamp())


def _remember(account_id: int, token: str, expires_at: float) -> str:
    _fresh[account_id] = (token, expires_at)
    return token


async def _failed(account_id: int, message: str):
    await sync_to_async(_write_error, thread_sensitive=False)(account_id, message)
    raise OAuthError(message)


# --- tokens and storage -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tokens:
    access: str
    refresh: str | None
    expires_in: float


def _tokens_from(response: httpx.Response) -> Tokens:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        error = body.get("error") if isinstance(body, dict) else None
        described = body.get("error_description") if isinstance(body, dict) else None
        reason = " ".join(str(x) for x in (error, described) if x) or "no access token in the answer"
        raise OAuthError(f"HTTP {response.status_code}: {reason}"[:300])
    return Tokens(body["access_token"], body.get("refresh_token"), float(body.get("expires_in") or 3600))


def _store(account: ProviderAccount, tokens: Tokens) -> datetime:
    now = timezone.now()
    account.set_credential(tokens.access)
    if tokens.refresh:
        account.oauth_refresh_encrypted = crypto.encrypt(tokens.refresh)
    account.oauth_expires_at = now + timedelta(seconds=tokens.expires_in)
    account.oauth_refreshed_at = now
    account.last_error, account.last_error_at = "", None
    account.kind = "anthropic_oauth"
    account.save()
    return account.oauth_expires_at


def _store_by_id(account_id: int, tokens: Tokens) -> datetime:
    """A refresh: update(), not save(), so no config flush; every snapshot picks the token up within its TTL."""
    close_old_connections()
    now = datetime.now(dt_timezone.utc)
    expiry = now + timedelta(seconds=tokens.expires_in)
    values = {"credential_encrypted": crypto.encrypt(tokens.access), "oauth_expires_at": expiry,
              "oauth_refreshed_at": now, "last_error": "", "last_error_at": None,
              "credential_last4": f"…{tokens.access[-4:]}" if len(tokens.access) >= 8 else "…"}  # fmt: skip
    if tokens.refresh:
        values["oauth_refresh_encrypted"] = crypto.encrypt(tokens.refresh)
    ProviderAccount.objects.filter(id=account_id).update(**values)
    return expiry


def _write_error(account_id: int, message: str) -> None:
    close_old_connections()
    ProviderAccount.objects.filter(id=account_id).update(last_error=message[:500], last_error_at=timezone.now())


async def _load(account_id: int) -> ProviderAccount | None:
    def load():
        close_old_connections()
        return ProviderAccount.objects.filter(id=account_id).first()

    return await sync_to_async(load, thread_sensitive=False)()


# --- the refresh lock ---------------------------------------------------------------------------------------------

_local_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Lock]]" = weakref.WeakKeyDictionary()
_redis: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object]" = weakref.WeakKeyDictionary()
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@asynccontextmanager
async def _lock(account_id: int):
    """Yields True to the holder; False to a caller that waited until the holder let go (it re-reads instead)."""
    if not settings.REDIS_URL:
        locks = _local_locks.setdefault(asyncio.get_running_loop(), {})
        lock = locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            yield True
        return
    client = _redis_client()
    key, token = f"gh:oauth:lock:{account_id}", secrets.token_hex(8)
    if await client.set(key, token, nx=True, px=int(LOCK_SECONDS * 1000)):
        try:
            yield True
        finally:
            await client.eval(_RELEASE, 1, key, token)
        return
    deadline = time.monotonic() + LOCK_SECONDS
    while time.monotonic() < deadline and await client.exists(key):
        await asyncio.sleep(0.05)
    yield False


def _redis_client():
    loop = asyncio.get_running_loop()
    client = _redis.get(loop)
    if client is None:
        import redis.asyncio as redis

        client = _redis[loop] = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return client
