"""Secrets shown once in the admin (client API keys, management tokens), with post/redirect/get.

The POST that creates the object answers with a redirect to a one-time page, so reloading that page (or going
back to it) creates nothing. Between the two, the secret waits in the session, encrypted under
GATEWAY_ENCRYPTION_KEY, under a random token, for at most SECRET_WAIT_SECONDS; the GET takes it out.

To use it: subclass `SecretOnceAdmin`, create the object in `save_model` through a service and put its secret
on `obj._secret_once`, and give `secret_template` and `secret_context`.
"""

import secrets
import time

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from . import crypto


class ShownOnce(str):
    """A new secret inside a template context: a failed variable lookup logs the context's repr at DEBUG, so the
    repr must not carry the value."""

    def __repr__(self):
        return "'<secret shown once>'"


class SecretOnceAdmin(admin.ModelAdmin):
    SECRET_WAIT_SECONDS = 300
    secret_template = ""

    def secret_context(self, request, obj, secret) -> dict:  # pragma: no cover - each subclass says
        raise NotImplementedError

    @property
    def _session_key(self) -> str:
        return f"gatehouse_new_secrets_{self.opts.model_name}"

    @property
    def _created_name(self) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_created"

    def response_add(self, request, obj, post_url_continue=None):
        secret = obj.__dict__.pop("_secret_once", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        waiting = self._waiting_secrets(request)
        token = secrets.token_urlsafe(24)
        waiting[token] = {"id": obj.pk, "at": time.time(), "secret": crypto.encrypt(secret)}
        request.session[self._session_key] = waiting
        del secret
        return HttpResponseRedirect(reverse(f"admin:{self._created_name}", args=[obj.pk, token]))

    def _waiting_secrets(self, request) -> dict:
        """The session's secrets not yet shown, those older than SECRET_WAIT_SECONDS dropped."""
        now = time.time()
        return {
            token: entry
            for token, entry in request.session.get(self._session_key, {}).items()
            if now - entry["at"] < self.SECRET_WAIT_SECONDS
        }

    def get_urls(self):
        created = path(
            "<int:object_id>/created/<str:token>/",
            self.admin_site.admin_view(self.created_view),
            name=self._created_name,
        )
        return [created, *super().get_urls()]

    def created_view(self, request, object_id, token):
        """The secret, once: the entry leaves the session as it is read. A second GET (a reload, the back
        button) says the secret was already shown; it never shows it again and never creates anything."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        obj = get_object_or_404(self.get_queryset(request), pk=object_id)
        stored = request.session.get(self._session_key)
        waiting = self._waiting_secrets(request)
        entry = waiting.pop(token, None)
        if waiting:
            request.session[self._session_key] = waiting
        elif stored is not None:
            del request.session[self._session_key]
        secret = None
        if entry and entry["id"] == obj.pk:
            secret = ShownOnce(crypto.decrypt(entry["secret"]))
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   **self.secret_context(request, obj, secret)}  # fmt: skip
        response = TemplateResponse(request, self.secret_template, context)
        response["Cache-Control"] = "no-store"
        return response
