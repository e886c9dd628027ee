"""The config file's authority, shown where it matters: on the admin page of every object GATEWAY_CONFIG names.

With GATEWAY_CONFIG set, each start applies the file again, and the fields it owns (accounts.config
FILE_OWNED_FIELDS) go back to the file's values. So the change page of such an object says so in a warning at
the top, and each owned field's help text starts with "Set by GATEWAY_CONFIG". The file stays the authority:
edit it, not the admin. Objects the file does not name, and the other fields, are the admin's alone.

To mark another model: add its fields to FILE_OWNED_FIELDS, its names to `file_owned`, how the file names one of
its objects to CONFIG_KEYS, and `ConfigOwned` to its ModelAdmin's bases (first).
"""

import copy
import os

from django.conf import settings
from django.contrib import messages

from .config import FILE_OWNED_FIELDS, ConfigError, config_parse, config_read

OWNED_NOTE = "Set by GATEWAY_CONFIG: reverted to the file's value at the next start."

_owned_cache: dict = {}


def file_owned(path: str, environ) -> dict[str, set]:
    """The objects `path` names, by model: {"provider": {name}, "provideraccount": {(provider, name)},
    "modelroute": {alias}, "project": {slug}}; read again only when the file changes. Raises ConfigError."""
    stamp = (path, os.stat(path).st_mtime_ns)
    if _owned_cache.get("stamp") != stamp:
        config = config_parse(config_read(path), environ=environ, known_providers=())
        _owned_cache.update(stamp=stamp, owned={
            "provider": {p.name for p in config.providers},
            "provideraccount": {(p.name, a.name) for p in config.providers for a in p.accounts},
            "modelroute": {m.alias for m in config.models},
            "project": {p.slug for p in config.projects},
        })  # fmt: skip
    return _owned_cache["owned"]


# How the file names an object of each model.
CONFIG_KEYS = {
    "provider": lambda obj: obj.name,
    "provideraccount": lambda obj: (obj.provider.name, obj.name),
    "modelroute": lambda obj: obj.alias,
    "project": lambda obj: obj.slug,
}


class ConfigOwned:
    """ModelAdmin mixin for the models in CONFIG_KEYS."""

    def config_key(self, obj):
        return CONFIG_KEYS[self.model._meta.model_name](obj)

    def owned_fields(self, obj) -> tuple[str, ...]:
        path = settings.GATEWAY_CONFIG
        if not path or obj is None or obj.pk is None:
            return ()
        model = self.model._meta.model_name
        try:
            owned = file_owned(path, os.environ)
        except (ConfigError, OSError):
            return ()
        return FILE_OWNED_FIELDS[model] if self.config_key(obj) in owned[model] else ()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        fields = self.owned_fields(obj)
        if fields and request.method == "GET":
            messages.warning(
                request,
                f"This {self.model._meta.verbose_name} is defined in the config file {settings.GATEWAY_CONFIG} "
                f"(GATEWAY_CONFIG), applied at every start: {', '.join(fields)} will be set back to the file's "
                "values then. Edit the file to change them for good.",
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        owned = [name for name in self.owned_fields(obj) if name in form.base_fields]
        if not owned:
            return form
        # A subclass with copies of the owned fields: a form's declared fields are shared with its parent class.
        fields = {name: copy.copy(form.base_fields[name]) for name in owned}
        for field in fields.values():
            field.help_text = f"{OWNED_NOTE} {field.help_text or ''}".strip()
        marked = type(form.__name__, (form,), {})
        marked.base_fields = {**form.base_fields, **fields}  # after the metaclass, which sets its own
        return marked
