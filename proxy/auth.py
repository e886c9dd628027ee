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

from .errors import AuthenticationFailed

log = logging.getLogger(__name__)

CHANNEL = "gh:config-changed"
_MAX_CACHED = 50_000
_cache: dict[str, tuple[float, AuthenticatedKey | None]] = {}
_on_change: list = []  # other caches to drop with this one (proxy.routing registers its own)
_listener: asyncio.Task | None = None


class GatewayKey(AuthBase):
    """x-api-key, api-key or Authorization: Bearer (what the Anthropic and OpenAI SDKs send)."""

    openapi_type = "apiKey"
    openapi_in = "header"
    openapi_name = "x-api-key"

    async def __call__(self, request) -> AuthenticatedKey:
        return await self.authenticate(request)

    async def authenticate(self, request) -> AuthenticatedKey:
        return await authenticate(credential_from_headers(request.headers))


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
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[secret_digest] = cached = (now, key)
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
