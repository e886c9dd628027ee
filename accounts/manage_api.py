"""Management API resources that accounts owns: projects, client API keys, providers with their accounts, routes.

Bodies use the config file's shape (accounts/config.py), and every write goes through `config_apply`, so the
file, the admin and this API share one validator: a bad body changes nothing and gets a 422 listing every
problem by its path. What a GET returns can be sent back to PUT unchanged. `${VAR}` and `api_key_env` are
config-file features only: here they are refused (the server's environment is not the caller's to read).
Credentials are write-only: an account shows `has_credential`, never the secret or its last characters.

Shared plumbing (auth, errors, pages, Idempotency-Key) is in accounts/manage_common.py.
"""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Router

from . import manage_schemas as S
from . import self_address, services
from .config import REQUEST_LOG_FIELDS
from .manage_common import ManagementError, config_item_apply, endpoint, invalid, json_body, not_found, page
from .models import ApiKey, ModelRoute, Project, Provider, ProviderAccount, split_aliases

router = Router(tags=["projects, keys, providers, routes"])


def _create(section: str, body: dict, model, name_field: str, load):
    """A new object from a config-shaped body (409 when its name is taken), loaded back for the answer."""
    name = body.get(name_field)
    if isinstance(name, str) and model.objects.filter(**{name_field: name}).exists():
        raise ManagementError(409, "conflict", f"{model._meta.verbose_name} {name!r} exists")
    with transaction.atomic():
        config_item_apply(section, body)
        return load(name)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# --- projects -------------------------------------------------------------------------------------------------

PROJECT_EDITABLE = ("name", "active", "rpm", "tpm", "monthly_budget_usd", "daily_budget_usd", "budget_alert_percent",
                    "allowed_models", "redaction", "request_logs")  # fmt: skip


def project_out(project: Project) -> dict:
    return {
        "id": project.id,
        "slug": project.slug,
        "name": project.name,
        "active": project.active,
        "rpm": project.rpm_limit,
        "tpm": project.tpm_limit,
        "monthly_budget_usd": _money(project.monthly_budget_usd),
        "daily_budget_usd": _money(project.daily_budget_usd),
        "budget_alert_percent": project.budget_alert_percent,
        "allowed_models": split_aliases(project.allowed_models),
        "redaction": _redaction_out(project),
        "request_logs": {key: getattr(project, name) for key, name in REQUEST_LOG_FIELDS.items()},
        "created_at": project.created_at.isoformat(),
    }


def _redaction_out(project: Project) -> dict:
    rules = getattr(project, "redaction", None)  # no row: every rule off
    if rules is None:
        return {"secrets": "off", "pii": "off", "rules": {}}
    return {"secrets": rules.secrets, "pii": rules.pii, "rules": rules.rules}


def _project(slug: str) -> Project:
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise not_found(f"project {slug!r}")
    return project


@endpoint(router.get, "/projects", "List projects (newest first)", S.ProjectPage)
def projects_list(request: HttpRequest, cursor: str | None = None, limit: int = 50, active: bool | None = None):
    queryset = Project.objects.all() if active is None else Project.objects.filter(active=active)
    return page(queryset, cursor=cursor, limit=limit, render=project_out)


@endpoint(router.post, "/projects", "Create a project (Idempotency-Key honoured)",
          S.ProjectOut, status=201, body=S.ProjectIn)  # fmt: skip
def projects_create(request: HttpRequest):
    return JsonResponse(project_out(project_create(json_body(request))), status=201)


def project_create(body: dict) -> Project:
    """A new project from a config-shaped body (also the Coding Gateway's POST /admin/projects)."""
    return _create("projects", body, Project, "slug", lambda slug: Project.objects.get(slug=slug))


@endpoint(router.get, "/projects/{slug}", "A project", S.ProjectOut)
def projects_read(request: HttpRequest, slug: str):
    return project_out(_project(slug))


@endpoint(router.patch, "/projects/{slug}",
          "Change a project's name, limits, budgets, allowed models, redaction rules or active flag",
          S.ProjectOut, body=S.ProjectIn)  # fmt: skip
def projects_update(request: HttpRequest, slug: str):
    return project_out(project_change(slug, json_body(request)))


def project_change(slug: str, body: dict) -> Project:
    """The editable fields in `body` changed, the others kept (also the Coding Gateway's PUT /admin/projects)."""
    unknown = sorted(set(body) - set(PROJECT_EDITABLE))
    if unknown:
        raise invalid([f"{name}: not editable (editable: {', '.join(PROJECT_EDITABLE)})" for name in unknown])  # fmt: skip
    with transaction.atomic():
        project = Project.objects.select_for_update().filter(slug=slug).first() or _project(slug)
        merged = {k: v for k, v in project_out(project).items() if k in PROJECT_EDITABLE or k == "slug"}
        config_item_apply("projects", {**merged, **body})
        project.refresh_from_db()
    return project


@endpoint(router.delete, "/projects/{slug}", "Deactivate a project (its keys stop working; its history stays)",
          S.ProjectOut)  # fmt: skip
def projects_deactivate(request: HttpRequest, slug: str):
    return project_out(project_deactivate(slug))


def project_deactivate(slug: str) -> Project:
    project = _project(slug)
    if project.active:
        project.active = False
        project.save(update_fields=["active"])
    return project


# --- client API keys ------------------------------------------------------------------------------------------

KEY_FIELDS = ("name", "expires_at", "allowed_models", "rpm_limit", "tpm_limit", "max_concurrent", "monthly_budget_usd",
              "daily_budget_usd")  # fmt: skip


def key_out(key: ApiKey) -> dict:
    return {
        "id": key.id,
        "project": key.project.slug,
        "name": key.name,
        "prefix": key.prefix,
        "status": key.status,
        "created_at": key.created_at.isoformat(),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "allowed_models": split_aliases(key.allowed_models),
        "rpm_limit": key.rpm_limit,
        "tpm_limit": key.tpm_limit,
        "max_concurrent": key.max_concurrent,
        "monthly_budget_usd": _money(key.monthly_budget_usd),
        "daily_budget_usd": _money(key.daily_budget_usd),
    }


def _key(key_id: int) -> ApiKey:
    key = ApiKey.objects.select_related("project").filter(id=key_id).first()
    if key is None:
        raise not_found(f"API key {key_id}")
    return key


@endpoint(router.get, "/keys", "List client API keys (prefixes only, never secrets)", S.KeyPage)
def keys_list(request: HttpRequest, cursor: str | None = None, limit: int = 50, project: str | None = None,
              status: str | None = None):  # fmt: skip
    queryset = ApiKey.objects.select_related("project")
    if project:
        queryset = queryset.filter(project__slug=project)
    if status == "revoked":
        queryset = queryset.filter(revoked_at__isnull=False)
    elif status == "active":
        queryset = queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=timezone.now())
    elif status is not None:
        raise ManagementError(400, "invalid_request_error", "status must be active or revoked")
    return page(queryset, cursor=cursor, limit=limit, render=key_out)


@endpoint(router.post, "/projects/{slug}/keys", "Create a client API key (its secret is in this response only)",
          S.KeyCreated, status=201, body=S.KeyIn)  # fmt: skip
def keys_create(request: HttpRequest, slug: str):
    project = _project(slug)
    if not project.active:
        raise ManagementError(409, "conflict", f"project {slug!r} is inactive")
    fields = _key_fields(json_body(request))
    key, secret = services.key_issue(project=project, **fields)
    return JsonResponse({**key_out(key), "secret": secret}, status=201)


def _key_fields(body: dict) -> dict:
    """The key's fields, checked by the model's own validation (the admin form's rules)."""
    unknown = sorted(set(body) - set(KEY_FIELDS))
    problems = [f"{name}: unknown field (expected one of: {', '.join(KEY_FIELDS)})" for name in unknown]
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        problems.append("name: required (who or what uses this key)")
    if problems:
        raise invalid(problems)
    fields = {k: v for k, v in body.items() if k in KEY_FIELDS}
    if isinstance(fields.get("allowed_models"), list):
        fields["allowed_models"] = ", ".join(str(a) for a in fields["allowed_models"])
    candidate = ApiKey(project=Project(slug="x"), prefix="x", digest="x", **fields)
    try:
        candidate.full_clean(exclude=["project", "prefix", "digest"])
    except Exception as e:  # ValidationError: its messages per field
        details = getattr(e, "message_dict", {"__all__": [str(e)]})
        raise invalid([f"{name}: {' '.join(messages)}" for name, messages in details.items()]) from None  # fmt: skip
    return {k: getattr(candidate, k) for k in fields}


@endpoint(router.get, "/keys/{key_id}", "A client API key (prefix only)", S.KeyOut)
def keys_read(request: HttpRequest, key_id: int):
    return key_out(_key(key_id))


@endpoint(router.post, "/keys/{key_id}/revoke", "Revoke a client API key (refused by every process within seconds)",
          S.KeyOut)  # fmt: skip
def keys_revoke(request: HttpRequest, key_id: int):
    key = _key(key_id)
    if key.revoked_at is None:
        services.keys_revoke(ApiKey.objects.filter(id=key.id))
        key.refresh_from_db()
    return key_out(key)


@endpoint(router.post, "/keys/{key_id}/rotate", "A new secret for a key; the old one stays valid for grace_seconds",
          S.KeyRotated, status=201, body=S.RotateIn)  # fmt: skip
def keys_rotate(request: HttpRequest, key_id: int):
    body = json_body(request) if request.body else {}
    grace = body.get("grace_seconds", 0)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= 30 * 86400:
        raise invalid(["grace_seconds: a whole number from 0 to 2592000"])
    old = _key(key_id)
    if old.status != "active":
        raise ManagementError(409, "conflict", f"API key {key_id} is {old.status}")
    new, secret = services.key_rotate(old, grace=timedelta(seconds=grace))
    return JsonResponse({**key_out(new), "secret": secret, "replaces": key_out(old)}, status=201)


# --- providers and their accounts -------------------------------------------------------------------------

_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "password", "cookie")


def provider_out(provider: Provider) -> dict:
    out = {
        "id": provider.id,
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "connect_timeout": provider.connect_timeout,
        "read_timeout": provider.read_timeout,
        "extra_headers": {  # a header may carry a credential: its value is write-only like the accounts'
            name: "(hidden)" if any(w in name.lower() for w in _SECRET_HEADER_WORDS) else value
            for name, value in (provider.extra_headers or {}).items()
        },
        "enabled": provider.enabled,
        "accounts": [account_out(a) for a in provider.accounts.all()],
        # Read-only: e.g. a base URL that is the gateway's own address (accounts/self_address.py)
        "warnings": [w for w in (self_address.warning(provider.name, provider.base_url),) if w],
    }
    for optional in ("preset", "capabilities"):  # the provider presets' fields
        if hasattr(provider, optional):
            out[optional] = getattr(provider, optional)
    return out


def account_out(account: ProviderAccount) -> dict:
    return {
        "name": account.name,
        "weight": account.weight,
        "priority": account.priority,
        "enabled": account.enabled,
        "has_credential": bool(account.credential_encrypted),
        "last_error": account.last_error,
        "last_error_at": account.last_error_at.isoformat() if account.last_error_at else None,
        "cooldown_until": account.cooldown_until.isoformat() if account.cooldown_until else None,
    }


def _provider(name: str) -> Provider:
    provider = Provider.objects.prefetch_related("accounts").filter(name=name).first()
    if provider is None:
        raise not_found(f"provider {name!r}")
    return provider


def _writable(body: dict) -> dict:
    """A provider body as the config file takes it: read-only fields dropped, hidden headers left as they are."""
    body = {k: v for k, v in body.items() if k not in ("id", "warnings")}
    body["accounts"] = [
        {k: v for k, v in a.items() if k not in ("has_credential", "last_error", "last_error_at", "cooldown_until")}
        for a in body.get("accounts") or []
        if isinstance(a, dict)
    ] if isinstance(body.get("accounts"), list) else body.get("accounts")  # fmt: skip
    if body["accounts"] is None:
        body.pop("accounts")
    return body


@endpoint(router.get, "/providers", "List providers with their accounts (credentials never shown)", S.ProviderPage)
def providers_list(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    return page(Provider.objects.prefetch_related("accounts"), cursor=cursor, limit=limit, render=provider_out)


@endpoint(router.post, "/providers", "Create a provider (and its accounts, with api_key)",
          S.ProviderOut, status=201, body=S.ProviderIn)  # fmt: skip
def providers_create(request: HttpRequest):
    provider = _create("providers", _writable(json_body(request)), Provider, "name", _provider)
    return JsonResponse(provider_out(provider), status=201)


@endpoint(router.get, "/providers/{name}", "A provider", S.ProviderOut)
def providers_read(request: HttpRequest, name: str):
    return provider_out(_provider(name))


@endpoint(router.put, "/providers/{name}", "Replace a provider's settings; accounts named are created or updated",
          S.ProviderOut, body=S.ProviderIn)  # fmt: skip
def providers_update(request: HttpRequest, name: str):
    _provider(name)  # 404 before anything else
    body = _writable({**json_body(request), "name": name})
    hidden = [h for h, v in (body.get("extra_headers") or {}).items() if v == "(hidden)"]
    with transaction.atomic():
        provider = Provider.objects.select_for_update().get(name=name)
        kept = {h: provider.extra_headers[h] for h in hidden if h in provider.extra_headers}  # "(hidden)": unchanged
        body["extra_headers"] = {**(body.get("extra_headers") or {}), **kept}
        config_item_apply("providers", body)
    return provider_out(_provider(name))


@endpoint(router.delete, "/providers/{name}", "Delete a provider (refused while a route targets it)", None, status=204)
def providers_delete(request: HttpRequest, name: str):
    provider = _provider(name)
    routes = sorted(set(provider.targets.values_list("route__alias", flat=True)))
    if routes:
        raise ManagementError(409, "conflict", f"provider {name!r} is a target of: {', '.join(routes)}")
    provider.delete()
    return HttpResponse(status=204)


@endpoint(router.delete, "/providers/{name}/accounts/{account}", "Delete one account of a provider", None, status=204)
def accounts_delete(request: HttpRequest, name: str, account: str):
    row = ProviderAccount.objects.filter(provider__name=name, name=account).first()
    if row is None:
        raise not_found(f"account {name}/{account}")
    row.delete()
    return HttpResponse(status=204)


# --- routes ---------------------------------------------------------------------------------------------------


def route_out(route: ModelRoute) -> dict:
    retry = {
        "max_attempts": route.retry_max_attempts,
        "base_ms": route.retry_base_ms,
        "cap_ms": route.retry_cap_ms,
        "deadline_seconds": route.retry_deadline_seconds,
    }
    return {
        "id": route.id,
        "alias": route.alias,
        "display_name": route.display_name,
        "enabled": route.enabled,
        "default_max_tokens": route.default_max_tokens,
        "max_output_tokens": route.max_output_tokens,
        "strategy": route.strategy,
        "retry": {k: v for k, v in retry.items() if v is not None},
        "response_cache_ttl": route.response_cache_ttl,
        "on_all_open": route.on_all_open,
        "targets": [
            {"provider": t.provider.name, "model": t.remote_model, "priority": t.priority, "weight": t.weight}
            for t in sorted(route.targets.all(), key=lambda t: t.id)
        ],
    }


def _routes():
    return ModelRoute.objects.prefetch_related("targets__provider")


def _route(route_id: int) -> ModelRoute:
    route = _routes().filter(id=route_id).first()
    if route is None:
        raise not_found(f"route {route_id}")
    return route


@endpoint(router.get, "/routes", "List model routes with their targets", S.RoutePage)
def routes_list(request: HttpRequest, cursor: str | None = None, limit: int = 50):
    return page(_routes(), cursor=cursor, limit=limit, render=route_out)


@endpoint(router.post, "/routes", "Create a model route", S.RouteOut, status=201, body=S.RouteIn)
def routes_create(request: HttpRequest):
    body = {k: v for k, v in json_body(request).items() if k != "id"}
    route = _create("models", body, ModelRoute, "alias", lambda alias: _routes().get(alias=alias))
    return JsonResponse(route_out(route), status=201)


@endpoint(router.get, "/routes/{route_id}", "A model route", S.RouteOut)
def routes_read(request: HttpRequest, route_id: int):
    return route_out(_route(route_id))


@endpoint(router.put, "/routes/{route_id}", "Replace a route's settings and targets (the alias may not change)",
          S.RouteOut, body=S.RouteIn)  # fmt: skip
def routes_update(request: HttpRequest, route_id: int):
    route = _route(route_id)
    body = {k: v for k, v in json_body(request).items() if k != "id"}
    if body.setdefault("alias", route.alias) != route.alias:
        raise invalid(["alias: cannot change; create a new route"])
    with transaction.atomic():
        config_item_apply("models", body)
    return route_out(_route(route_id))


@endpoint(router.delete, "/routes/{route_id}", "Delete a model route", None, status=204)
def routes_delete(request: HttpRequest, route_id: int):
    route = _route(route_id)
    with transaction.atomic():
        route.delete()
    return HttpResponse(status=204)
