"""What every management API router shares: the token check, errors, cursor pages and idempotent creates.

The management API (assembled in gateway_site/manage_api.py, served under /manage/v1/) is for scripts: CI jobs
minting keys, onboarding scripts, finance spreadsheets. Its routers live with the data they serve
(accounts/manage_api.py: projects, keys, providers, routes; usage/manage_api.py: prices and numbers;
proxy/manage_api.py: live status) and use only what is here, so every endpoint behaves alike:

- `TokenAuth` accepts a management token (`Authorization: Bearer ghm_…`, accounts/api_tokens.py) and nothing
  else; a `read` token may only GET. A gateway API key gets a 401 that says so.
- Every failure is `{"error": {"type", "message"[, "problems"]}}` with its status (`ManagementError`, raised
  anywhere, rendered in gateway_site/manage_api.py).
- Lists are cursor pages (`page()`): `?limit=&cursor=` in, `{"data", "has_more", "next_cursor"}` out.
- Creates that a retried script must not repeat take an `Idempotency-Key` header (`idempotent`).

To add an endpoint: a function declared with `endpoint(router.<method>, path, summary, answer schema)`, reading
the body with `json_body(request)` and raising ManagementError; `endpoint` audits a write and makes a create
idempotent. Its path and schema appear at /manage/v1/docs.
"""

import base64
import functools
import hashlib
import json

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja.security.base import AuthBase

from . import api_tokens, audit, crypto, services
from . import manage_schemas as S
from .config import ConfigError
from .models import IdempotentResponse, ManagementToken

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


class ManagementError(Exception):
    def __init__(self, status: int, type_: str, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.status, self.type, self.message, self.problems = status, type_, message, problems

    def body(self) -> dict:
        error = {"type": self.type, "message": self.message}
        if self.problems:
            error["problems"] = self.problems
        return {"error": error}


def not_found(what: str) -> ManagementError:
    return ManagementError(404, "not_found", f"{what} not found")


def invalid(problems: list[str]) -> ManagementError:
    """A body that failed validation: every problem, each named by its field's path."""
    return ManagementError(422, "invalid_request_error", "invalid body", problems)


class TokenAuth(AuthBase):
    """`Authorization: Bearer ghm_…`. The token is read from the database on every call, so a revocation takes
    effect at the next call in every process (the management API is not a hot path)."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest) -> ManagementToken:
        secret = _credential(request)
        if not secret:
            raise ManagementError(401, "authentication_error", "missing management token (Authorization: Bearer ghm_…)")
        if secret.startswith("gh_"):
            raise ManagementError(
                401, "authentication_error",
                "a gateway API key cannot use the management API: create a management token in the admin",
            )  # fmt: skip
        token = api_tokens.token_find(secret)
        if token is None:
            raise ManagementError(401, "authentication_error", "invalid or revoked management token")
        if token.scope != "write" and request.method not in READ_METHODS:
            needs = f"the token {token.name!r} has the read scope; this needs write"
            raise ManagementError(403, "permission_error", needs)
        return token


def _credential(request: HttpRequest) -> str | None:
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return (request.headers.get("x-api-key") or "").strip() or None


def json_body(request: HttpRequest) -> dict:
    """The request body as a JSON object; anything else is a 400 that says what was wrong."""
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise ManagementError(400, "invalid_request_error", f"the body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ManagementError(400, "invalid_request_error", "the body must be a JSON object")
    return data


def config_item_apply(section: str, item: dict) -> None:
    """One object through the config file's validator and writer (accounts.services.config_apply), all or
    nothing. `${VAR}` and `api_key_env` are config-file features: over the API they would read the server's
    environment, so they are refused."""
    if _mentions_environment(item):
        raise invalid(["${VAR} and api_key_env are for config files; send the value itself (api_key)"])
    try:
        services.config_apply({section: [item]}, environ={})
    except ConfigError as e:
        raise invalid(e.problems) from None


def _mentions_environment(value) -> bool:
    if isinstance(value, dict):
        return "api_key_env" in value or any(_mentions_environment(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_environment(v) for v in value)
    return isinstance(value, str) and "${" in value


# --- cursor pages ---------------------------------------------------------------------------------------------

MAX_LIMIT = 200


def page(queryset, *, cursor: str | None, limit: int, render) -> dict:
    """Newest first by id. The cursor is the last id seen, opaque to callers; rows added meanwhile never shift a
    page (unlike offsets)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ManagementError(400, "invalid_request_error", f"limit must be between 1 and {MAX_LIMIT}")
    queryset = queryset.order_by("-id")
    if cursor:
        queryset = queryset.filter(id__lt=_cursor_id(cursor))
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = base64.urlsafe_b64encode(str(rows[-1].id).encode()).decode() if more else None
    return {"data": [render(row) for row in rows], "has_more": more, "next_cursor": next_cursor}


def _cursor_id(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise ManagementError(400, "invalid_request_error", "invalid cursor") from None


# --- idempotent creates ---------------------------------------------------------------------------------------


def idempotent(view):
    """With an `Idempotency-Key` header, the first answer (status and body) is kept and replayed to a retry with
    the same key and the same request, so a retried script never mints two keys. The same key with a different
    request is a 422; a retry while the first is still running, a 409. Errors are not kept: they may be retried."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        key = request.headers.get("idempotency-key")
        if not key:
            return view(request, *args, **kwargs)
        if len(key) > 255:
            raise ManagementError(400, "invalid_request_error", "Idempotency-Key is longer than 255 characters")
        request_line = f"{request.method} {request.path}\n".encode()
        digest = hashlib.sha256(request_line + request.body).hexdigest()
        claimed = _claim(request.auth, key, digest)
        if claimed is not None:
            return claimed
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            IdempotentResponse.objects.filter(token=request.auth, key=key, status__isnull=True).delete()
            raise
        IdempotentResponse.objects.filter(token=request.auth, key=key).update(
            status=response.status_code, body_encrypted=crypto.encrypt(response.content.decode())
        )
        return response

    return wrapper


def _claim(token, key: str, digest: str) -> JsonResponse | None:
    """None when this request is the first with the key (it is now claimed), else the answer to give."""
    horizon = timezone.now() - timezone.timedelta(hours=settings.GATEWAY_IDEMPOTENCY_HOURS)
    IdempotentResponse.objects.filter(created_at__lt=horizon).delete()
    try:
        with transaction.atomic():
            IdempotentResponse.objects.create(token=token, key=key, request_digest=digest)
        return None
    except IntegrityError:
        pass
    kept = IdempotentResponse.objects.filter(token=token, key=key).first()
    if kept is None:  # expired between the two statements: a fresh claim is a conflict for this call only
        raise ManagementError(409, "conflict", "a request with this Idempotency-Key is in progress; retry")
    if kept.request_digest != digest:
        raise ManagementError(422, "idempotency_error", "this Idempotency-Key was used with a different request")
    if kept.status is None:
        raise ManagementError(409, "conflict", "a request with this Idempotency-Key is in progress; retry")
    response = JsonResponse(json.loads(crypto.decrypt(kept.body_encrypted)), status=kept.status)
    response["Idempotent-Replayed"] = "true"
    return response


# --- audit ---------------------------------------------------------------------------------------------------


def audited(view):
    """Every tracked save and delete the view makes lands in the audit trail (accounts/audit.py) under the
    token's name, with source "api"; a write that fails leaves nothing there."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        with audit.capture(actor=f"token:{request.auth.name}", source="api"):
            return view(request, *args, **kwargs)

    return wrapper


# --- declaring an endpoint -------------------------------------------------------------------------------------


def endpoint(route, path: str, summary: str, answer, *, status: int = 200, body=None):
    """Declare a view on a router: `route` is the router's method (`router.get`, `router.post`, ...), `answer` the
    schema of its success (`status`), `body` the schema its request body is described by. Every write is
    `audited`; a write that creates (201) is also `idempotent`, so a retried script never creates twice."""

    def declare(view):
        if route.__name__ != "get":
            view = audited(view)
            view = idempotent(view) if status == 201 else view
        extra = {"openapi_extra": S.body(body)} if body is not None else {}
        return route(path, summary=summary, response=S.responds(status, answer), **extra)(view)

    return declare
