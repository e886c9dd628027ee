"""The audit trail: who changed which key, project (budgets, limits), route, provider, account, price or admin
user, when, through what, and how — field by field, never a secret value.

    with audit.capture(actor="alice", source="admin", user=request.user):
        ...   # every save and delete of a tracked model in here becomes an AuditEvent, written when the block
              # ends without an error (a change that raised, and so rolled back, leaves none)

Who opens a capture: AuditMiddleware around every admin POST by a staff user (so a new admin page or action is
audited without doing anything), and the operator commands apply_config (and bootstrap's config file),
create_api_key and revoke_api_key. Saves and deletes are seen through Django's signals, one query per save
for the values before it; bulk `update()`s send no signals, so the services that make them
(accounts.services.keys_revoke, enabled_set) report them with `bulk_updated` first. Outside a capture (the
request path, the ledger writer, the breaker) the receivers return at once.

Several saves of one object in one capture make one event (a key created then given its limits: one "add").

Tracking another model: `audit.track(Model)` in its app's ready() (usage does it for prices). A field whose
value is secret is named in SECRET_FIELDS or has one of SECRET_MARKERS in its name: only that it changed is
kept. A field that moves on its own (last used, last error) goes in IGNORED_FIELDS.
"""

import getpass
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.db.models.signals import post_delete, post_save, pre_save

SECRET_MARKERS = ("secret", "password", "credential", "digest", "token", "pepper")
SECRET_FIELDS = {"extra_headers"}  # upstream headers may carry a credential of their own
IGNORED_FIELDS = {"last_used_at", "last_login", "last_error", "last_error_at", "cooldown_until"}
SECRET, NEW_SECRET = "[secret]", "[new secret]"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")

TRACKED: set[type] = set()


def track(*models) -> None:
    TRACKED.update(models)


@dataclass
class Capture:
    actor: str
    source: str
    user_id: int | None = None
    entries: dict[tuple[str, str], dict] = field(default_factory=dict)  # (type, id) -> event fields, in order
    before: dict[int, dict | None] = field(default_factory=dict)  # id(instance) -> its row before the save

    def add(self, model, pk, text: str, action: str, changes: dict) -> None:
        key = (model._meta.label_lower, str(pk))
        earlier = self.entries.get(key)
        if earlier is not None and action == "change":
            for name, (old, new) in changes.items():
                first = earlier["changes"].get(name, [old, None])[0]
                earlier["changes"][name] = [first, new]
            earlier["object_repr"] = text[:200]
            return
        self.entries[key] = {"action": action, "object_type": key[0], "object_id": key[1][:64],
                             "object_repr": text[:200], "changes": changes}  # fmt: skip

    def write(self) -> None:
        from .models import AuditEvent

        events = [
            AuditEvent(actor=self.actor[:150], user_id=self.user_id, source=self.source, **entry)
            for entry in self.entries.values()
            if entry["action"] != "change" or entry["changes"]
        ]
        if events:
            AuditEvent.objects.bulk_create(events)
        self.entries.clear()


_current: ContextVar[Capture | None] = ContextVar("audit_capture", default=None)


@contextmanager
def capture(*, actor: str, source: str, user=None):
    """Record tracked changes made inside the block (see the module docstring). Nested captures: the outer one
    records."""
    if _current.get() is not None:
        yield _current.get()
        return
    recording = Capture(actor=actor, source=source, user_id=getattr(user, "pk", None))
    token = _current.set(recording)
    try:
        yield recording
    finally:
        _current.reset(token)
    recording.write()


def operator() -> str:
    """Who runs an operator command: the system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def bulk_updated(queryset, **values) -> None:
    """Report an `update(**values)` about to be made on `queryset` (call it before the update)."""
    recording = _current.get()
    if recording is None or queryset.model not in TRACKED:
        return
    for obj in queryset:
        changes = {}
        for name, new in values.items():
            old = getattr(obj, name)
            if old != new:
                changes[name] = _shown(name, _plain(old), _plain(new))
        if changes:
            recording.add(queryset.model, obj.pk, str(obj), "change", changes)


# --- values and diffs ---------------------------------------------------------------------------------------


def _fields(model):
    return [f for f in model._meta.concrete_fields if not f.primary_key and f.name not in IGNORED_FIELDS]


def _is_secret(name: str) -> bool:
    return name in SECRET_FIELDS or any(marker in name for marker in SECRET_MARKERS)


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return str(value)


def _shown(name: str, old, new) -> list:
    if _is_secret(name):
        return [SECRET if old not in (None, "", {}) else "", NEW_SECRET if new not in (None, "", {}) else ""]
    return [old, new]


def values_of(instance) -> dict:
    return {f.attname: _plain(getattr(instance, f.attname)) for f in _fields(type(instance))}


def diff(before: dict, after: dict) -> dict:
    return {name: _shown(name, before.get(name), new) for name, new in after.items() if before.get(name) != new}


# --- signal receivers ------------------------------------------------------------------------------------------


def _pre_save(sender, instance, raw=False, **kwargs):
    recording = _current.get()
    if recording is None or raw or sender not in TRACKED or instance.pk is None:
        return
    names = [f.attname for f in _fields(sender)]
    recording.before[id(instance)] = sender._base_manager.filter(pk=instance.pk).values(*names).first()


def _post_save(sender, instance, created, raw=False, **kwargs):
    recording = _current.get()
    if recording is None or raw or sender not in TRACKED:
        return
    before = recording.before.pop(id(instance), None)
    after = values_of(instance)
    if created or before is None:
        changes = {name: _shown(name, None, v) for name, v in after.items() if v not in (None, "", {}, [])}
        recording.add(sender, instance.pk, str(instance), "add", changes)
    else:
        recording.add(sender, instance.pk, str(instance), "change", diff({k: _plain(v) for k, v in before.items()}, after))


def _post_delete(sender, instance, **kwargs):
    recording = _current.get()
    if recording is None or sender not in TRACKED:
        return
    changes = {name: _shown(name, v, None) for name, v in values_of(instance).items() if v not in (None, "", {}, [])}
    recording.add(sender, instance.pk, str(instance), "delete", changes)


def connect() -> None:
    """Called once from AccountsConfig.ready()."""
    from django.contrib.auth.models import Group, User

    from .models import ApiKey, ManagementToken, ModelRoute, Project, ProjectOptimization, Provider, ProviderAccount
    from .models import ProjectRedaction, RouteTarget

    track(Project, ProjectOptimization, ProjectRedaction, ApiKey, ManagementToken, Provider, ProviderAccount,
          ModelRoute, RouteTarget, User, Group)  # fmt: skip
    pre_save.connect(_pre_save, dispatch_uid="audit_pre_save")
    post_save.connect(_post_save, dispatch_uid="audit_post_save")
    post_delete.connect(_post_delete, dispatch_uid="audit_post_delete")


# --- the admin -------------------------------------------------------------------------------------------------


class AuditMiddleware:
    """Every admin POST by a staff user runs inside a capture (settings.MIDDLEWARE, after authentication). The
    API never passes here (gateway_site/asgi.py serves it without middleware)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        user = request.user
        if request.method in SAFE_METHODS or not user.is_staff:
            return self.get_response(request)
        recording = Capture(actor=user.get_username(), source="admin", user_id=user.pk)
        token = _current.set(recording)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        if response.status_code < 500:  # a view that failed rolled its changes back
            recording.write()
        return response

    async def __acall__(self, request):
        if request.method in SAFE_METHODS:
            return await self.get_response(request)
        user = await request.auser()
        if not user.is_staff:
            return await self.get_response(request)
        recording = Capture(actor=user.get_username(), source="admin", user_id=user.pk)
        token = _current.set(recording)  # the sync view runs in a copy of this context: it sees `recording`
        try:
            response = await self.get_response(request)
        finally:
            _current.reset(token)
        if response.status_code < 500:  # a view that failed rolled its changes back
            await sync_to_async(recording.write)()
        return response
