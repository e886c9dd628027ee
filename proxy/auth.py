"""Who is calling: the credential in the request headers -> accounts.keys.AuthenticatedKey.

`GatewayKey` is the django-ninja auth class on every model endpoint (proxy/api.py), so no endpoint checks a key
by hand. A key is looked up once (accounts.keys.key_load, in an executor thread) and then cached in this process
by digest. Two things end a cached entry:
- its age: GATEWAY_CACHE_TTL seconds, the bound without Redis;
- a config change (a key revoked, a project's limits edited, ...): proxy/signals.py drops this process's cache
  at once and, when REDIS_URL is set, publishes on CHANNEL; every gateway process subscribes (`_listen`) and
  drops its cache too, so a revocation reaches all processes within milliseconds.
"""

import asyncio
import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from ninja.security.base import AuthBase

from accounts.config_seeds import MIN_SECRET_LENGTH
from accounts.keys import AuthenticatedKey, digest, key_load

from . import auth_failures
from .errors import AuthenticationFailed, GatewayError, RateLimited

log = logging.getLogger(__name__)

CHANNEL = "gh:config-changed"
SCOPE_KEY = "gatehouse.key"
_MAX_CACHED = 50_000
_cache: dict[str, tuple[float, AuthenticatedKey | None]] = {}
_on_change: list = []  # other caches to drop with this one (proxy.routing registers its own)
_listener: asyncio.Task | None = None
# Digests of keys this process has found good; they outlive cache drops, so a throttled address's own users
# keep being looked up (and served, unless revoked since) instead of getting the throttle's 429.
_seen_good: set[str] = set()


class GatewayKey(AuthBase):
    """x-api-key, api-key or Authorization: Bearer (what the Anthropic and OpenAI SDKs send)."""

    openapi_type = "apiKey"
    openapi_in = "header"
    openapi_name = "x-api-key"

    async def __call__(self, request) -> AuthenticatedKey:
        return await self.authenticate(request)

    async def authenticate(self, request) -> AuthenticatedKey:
        scope = getattr(request, "scope", None) or {}
        key = scope.get(SCOPE_KEY)  # the ASGI handler checked it before reading the body (gateway_site/asgi.py)
        if key is not None:
            return key
        return await authenticate_request(request.headers, request.META.get("REMOTE_ADDR"))


async def authenticate_request(headers, address: str | None) -> AuthenticatedKey:
    """The key of a request, from its headers alone; a failure is counted against the client's address
    (proxy/auth_failures.py), and an address past its failure limit is refused unless its key is already known."""
    refusal = precheck(headers, address)
    if refusal is not None:
        raise refusal
    secret = credential_from_headers(headers)
    try:
        return await authenticate(secret)
    except AuthenticationFailed as err:
        await auth_failures.record(address, "expired" if "expired" in err.message else "invalid")
        raise


def precheck(headers, address: str | None, known_bad: bool = False) -> GatewayError | None:
    """What can be refused without a database lookup (synchronous, so a server can call it as soon as the headers
    are in): no credential or a malformed one, a throttled address, and with `known_bad` a key this process has
    already looked up and found bad. Counts the refusal; returns None when the key must be looked up. A good key
    pays one dict lookup here (`known_bad` costs an HMAC, so the ASGI path leaves that to `authenticate`)."""
    secret = credential_from_headers(headers)
    if not secret or len(secret) < MIN_SECRET_LENGTH:  # gh_ keys, or a secret imported as it is (config_seeds)
        _count_soon(address, "missing" if not secret else "invalid")
        return AuthenticationFailed("invalid x-api-key" if secret else "missing API key")
    throttled = auth_failures.blocked(address)
    if not (throttled or known_bad):
        return None
    secret_digest = digest(secret)
    if secret_digest in _seen_good:
        return None  # a key seen good (however long ago) is looked up even from a throttled address (a shared NAT)
    cached = _cache.get(secret_digest)
    fresh = cached is not None and time.monotonic() - cached[0] <= settings.GATEWAY_CACHE_TTL
    if throttled:
        _count_soon(address, "throttled")
        return RateLimited(
            "too many requests with invalid API keys from this address; retry later",
            retry_after=auth_failures.retry_after(),
        )
    if fresh and cached[1] is None:
        _count_soon(address, "invalid")
        return AuthenticationFailed("invalid x-api-key")
    return None


def known_good(headers) -> bool:
    """The request's key is one this process has found good (no lookup needed to go on)."""
    secret = credential_from_headers(headers)
    return bool(secret) and digest(secret) in _seen_good


def _count_soon(address: str | None, reason: str) -> None:
    try:
        asyncio.get_running_loop().create_task(auth_failures.record(address, reason))
    except RuntimeError:  # no running loop (a sync caller): the metric and log line only
        auth_failures.count_only(reason)


def credential_from_headers(headers) -> str | None:
    value = headers.get("x-api-key") or headers.get("api-key")
    if value:
        return value.strip()
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


async def authenticate(secret: str | None) -> AuthenticatedKey:
    if not secret or len(secret) < MIN_SECRET_LENGTH:  # gh_ keys, or a secret imported as it is (config_seeds)
        raise AuthenticationFailed("invalid x-api-key" if secret else "missing API key")
    if _listener is None and settings.REDIS_URL:
        _start_listener()
    secret_digest = digest(secret)
    now = time.monotonic()
    cached = _cache.get(secret_digest)
    if cached is None or now - cached[0] > settings.GATEWAY_CACHE_TTL:
        key = await sync_to_async(key_load, thread_sensitive=False)(secret, secret_digest)
        if len(_cache) >= _MAX_CACHED:  # a flood of random keys must not push the good ones out: bad ones go first
            good = {d: entry for d, entry in _cache.items() if entry[1] is not None}
            _cache.clear()
            if len(good) < _MAX_CACHED // 2:
                _cache.update(good)
        _cache[secret_digest] = cached = (now, key)
        if key is not None:
            if len(_seen_good) >= _MAX_CACHED:
                _seen_good.clear()
            _seen_good.add(secret_digest)
    key = cached[1]
    if key is None:
        raise AuthenticationFailed("invalid x-api-key")
    if key.expires_at and key.expires_at <= timezone.now():
        raise AuthenticationFailed("API key expired")
    return key


def cache_clear() -> None:
    """Forget every cached key (and the caches registered with `on_change`)."""
    _cache.clear()
    for drop in _on_change:
        drop()


def on_change(drop) -> None:
    _on_change.append(drop)


def publish_change() -> None:
    """Tell every gateway process that keys or config changed (called after a commit; sync, from the admin)."""
    if not settings.REDIS_URL:
        return
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        client.publish(CHANNEL, b"1")
        client.close()
    except redis.RedisError as exc:  # the TTL still bounds how long other processes keep their cache
        log.warning("could not publish a config change to Redis: %s", type(exc).__name__)


def _start_listener() -> None:
    global _listener
    try:
        _listener = asyncio.get_running_loop().create_task(_listen(), name="config-change-listener")
    except RuntimeError:  # no running loop (a sync caller): the TTL is the bound
        pass


async def _listen() -> None:
    """Drop the caches whenever another process publishes a change; reconnect after Redis errors."""
    import redis.asyncio as aioredis

    warned = False
    while True:
        try:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1)
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                cache_clear()  # anything may have changed while we were not listening
                warned = False
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        cache_clear()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not warned:
                log.warning("config-change listener lost Redis (%s); retrying every 5 s", type(exc).__name__)
                warned = True
            await asyncio.sleep(5)
