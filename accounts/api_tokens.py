"""Management tokens: the credentials of the management API (gateway_site/manage_api.py), never of the model API.

A token is `ghm_` + 8 characters (the visible prefix) + 40 more; only HMAC-SHA256(pepper, token) is stored, as
for client API keys (accounts/keys.py). A gateway key (`gh_…`) is never a management token and a management
token never passes as a gateway key: the prefixes differ, and each API checks its own.
"""

import hmac
import secrets
import string

from django.db import transaction
from django.utils import timezone

from .keys import digest
from .models import ManagementToken

PREFIX = "ghm_"
PREFIX_LENGTH = len(PREFIX) + 8
_ALPHABET = string.ascii_letters + string.digits
SCOPES = ("read", "logs", "write")  # logs: read + request log bodies (usage/manage_api.py)


@transaction.atomic
def token_create(*, name: str, scope: str) -> tuple[ManagementToken, str]:
    """The stored token and its secret; the caller shows the secret once and forgets it."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    secret = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(48))
    token = ManagementToken.objects.create(name=name, scope=scope, prefix=secret[:PREFIX_LENGTH], digest=digest(secret))
    return token, secret


def token_find(secret: str) -> ManagementToken | None:
    """The active token with this secret, or None. Read on every management call: a revocation is immediate."""
    if not secret.startswith(PREFIX) or len(secret) < PREFIX_LENGTH + 8:
        return None
    token = ManagementToken.objects.filter(prefix=secret[:PREFIX_LENGTH], revoked_at__isnull=True).first()
    if token is None or not hmac.compare_digest(token.digest, digest(secret)):
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ManagementToken.objects.filter(pk=token.pk).update(last_used_at=now)  # at most once a minute
    return token


def tokens_revoke(queryset) -> int:
    return queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
