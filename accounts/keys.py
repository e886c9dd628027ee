"""Client API keys: made, digested, and checked on every request without touching the database once warm.

A key is `gh_` + 8 characters (the visible prefix, stored and shown) + 40 more. Only HMAC-SHA256(pepper, key)
is stored. Checked keys are cached in process by digest for GATEWAY_CACHE_TTL seconds: that bound is how long a
revoked key may keep working on another process.
"""

import hashlib
import hmac
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from proxy.errors import AuthenticationFailed

from .models import ApiKey, Project, split_aliases

PREFIX_LENGTH = 11  # "gh_" + 8
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    id: int
    prefix: str
    project_id: int
    project_slug: str
    # Each tuple must allow the model (empty = no restriction): the key narrows the project.
    project_models: tuple[str, ...]
    key_models: tuple[str, ...]
    expires_at: datetime | None


def digest(secret: str) -> str:
    return hmac.new(settings.GATEWAY_KEY_PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()


def key_generate() -> str:
    return "gh_" + "".join(secrets.choice(_ALPHABET) for _ in range(48))


@transaction.atomic
def key_create(*, project: Project, name: str, expires_days: int | None = None) -> tuple[ApiKey, str]:
    """Returns the stored key and its secret; the secret exists nowhere else afterwards."""
    secret = key_generate()
    key = ApiKey.objects.create(
        project=project,
        name=name,
        prefix=secret[:PREFIX_LENGTH],
        digest=digest(secret),
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    return key, secret


def key_revoke(key: ApiKey) -> None:
    if not key.revoked_at:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])


def key_find(secret_or_prefix: str) -> ApiKey | None:
    candidate = ApiKey.objects.filter(prefix=secret_or_prefix[:PREFIX_LENGTH]).first()
    if candidate is None:
        return None
    if len(secret_or_prefix) > PREFIX_LENGTH and not hmac.compare_digest(candidate.digest, digest(secret_or_prefix)):
        return None
    return candidate


# --- the hot path -----------------------------------------------------------------------------------------

_cache: dict[str, tuple[float, AuthenticatedKey | None]] = {}
_MAX_CACHED = 50_000


def cache_clear() -> None:
    _cache.clear()


def _load(secret: str, secret_digest: str) -> AuthenticatedKey | None:
    close_old_connections()  # runs in an executor thread that outlives requests: drop a stale connection
    key = ApiKey.objects.select_related("project").filter(prefix=secret[:PREFIX_LENGTH]).first()
    if key is None or not hmac.compare_digest(key.digest, secret_digest):
        return None
    if key.revoked_at or not key.project.active:
        return None
    return AuthenticatedKey(
        id=key.id,
        prefix=key.prefix,
        project_id=key.project_id,
        project_slug=key.project.slug,
        project_models=tuple(split_aliases(key.project.allowed_models)),
        key_models=tuple(split_aliases(key.allowed_models)),
        expires_at=key.expires_at,
    )


async def key_authenticate(secret: str | None) -> AuthenticatedKey:
    if not secret or not secret.startswith("gh_") or len(secret) < PREFIX_LENGTH + 8:
        raise AuthenticationFailed("invalid x-api-key" if secret else "missing API key")
    secret_digest = digest(secret)
    now = time.monotonic()
    cached = _cache.get(secret_digest)
    if cached is None or now - cached[0] > settings.GATEWAY_CACHE_TTL:
        key = await sync_to_async(_load, thread_sensitive=False)(secret, secret_digest)
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[secret_digest] = cached = (now, key)
    key = cached[1]
    if key is None:
        raise AuthenticationFailed("invalid x-api-key")
    if key.expires_at and key.expires_at <= timezone.now():
        raise AuthenticationFailed("API key expired")
    return key


def credential_from_headers(headers) -> str | None:
    """x-api-key, api-key, or Authorization: Bearer."""
    value = headers.get("x-api-key") or headers.get("api-key")
    if value:
        return value.strip()
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None
