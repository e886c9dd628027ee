"""Client API keys: made, digested, revoked, and read as the plain value the request path carries.

A key is `gh_` + 8 characters (the visible prefix, stored and shown) + 40 more. Only HMAC-SHA256(pepper, key)
is stored. Checking a key on a request (with its in-process cache) is proxy.auth's job; it reads keys through
`key_load` and `key_by_id` here, which never write.
"""

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from .models import ApiKey, Optimization, Project, Redaction, split_aliases

PREFIX_LENGTH = 11  # "gh_" + 8
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class RequestLogSetting:
    """What the request path needs of a project's request-log setting (accounts.models.Project.request_log_*)."""

    full: bool  # False: metadata only
    max_bytes: int


def request_log_setting(project: Project) -> RequestLogSetting | None:
    if project.request_log_mode not in ("metadata", "full"):
        return None
    return RequestLogSetting(full=project.request_log_mode == "full", max_bytes=project.request_log_max_bytes)


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
    # Policies (None = unlimited); see proxy/policies.
    key_rpm: int | None = None
    key_tpm: int | None = None
    key_concurrent: int | None = None
    key_month_budget: Decimal | None = None
    key_day_budget: Decimal | None = None
    project_rpm: int | None = None
    project_tpm: int | None = None
    project_month_budget: Decimal | None = None
    project_day_budget: Decimal | None = None
    budget_alert_percent: int = 80
    optimize: Optimization | None = None  # the project's cost-optimization layers (proxy/optimize); None = all off
    redact: Redaction | None = None  # the project's redaction rules (proxy/redact.py); None = every rule off
    request_log: RequestLogSetting | None = None  # the project's request logs (proxy/request_log.py); None = off


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


# --- the read behind authentication (proxy.auth caches it) -----------------------------------------------


def key_load(secret: str, secret_digest: str) -> AuthenticatedKey | None:
    """The active key with this secret, as the plain value the request path carries; None if there is none."""
    close_old_connections()  # runs in an executor thread that outlives requests: drop a stale connection
    key = (ApiKey.objects.select_related("project__optimization", "project__redaction")
           .filter(prefix=secret[:PREFIX_LENGTH]).first())  # fmt: skip
    if key is None or not hmac.compare_digest(key.digest, secret_digest):
        return None
    return _usable(key)


def key_by_id(key_id: int) -> AuthenticatedKey | None:
    """The same value for a key known by id (a batch job runs on behalf of the key that submitted it)."""
    key = ApiKey.objects.select_related("project__optimization", "project__redaction").filter(id=key_id).first()
    return _usable(key) if key is not None else None


def _usable(key: ApiKey) -> AuthenticatedKey | None:
    if key.revoked_at or not key.project.active:
        return None
    project = key.project
    return AuthenticatedKey(
        id=key.id,
        prefix=key.prefix,
        project_id=key.project_id,
        project_slug=project.slug,
        project_models=tuple(split_aliases(project.allowed_models)),
        key_models=tuple(split_aliases(key.allowed_models)),
        expires_at=key.expires_at,
        key_rpm=key.rpm_limit,
        key_tpm=key.tpm_limit,
        key_concurrent=key.max_concurrent,
        key_month_budget=key.monthly_budget_usd,
        key_day_budget=key.daily_budget_usd,
        project_rpm=project.rpm_limit,
        project_tpm=project.tpm_limit,
        project_month_budget=project.monthly_budget_usd,
        project_day_budget=project.daily_budget_usd,
        budget_alert_percent=project.budget_alert_percent,
        optimize=project.optimization.view() if hasattr(project, "optimization") else None,
        redact=project.redaction.view() if hasattr(project, "redaction") else None,
        request_log=request_log_setting(project),
    )
