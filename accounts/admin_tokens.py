"""Admin pages for management tokens (the management API's credentials): create (secret shown once), revoke."""

from django.contrib import admin
from django.urls import reverse

from . import api_tokens
from .admin_secret import SecretOnceAdmin, ShownOnce
from .models import ManagementToken


@admin.register(ManagementToken)
class ManagementTokenAdmin(SecretOnceAdmin):
    list_display = ("name", "prefix", "scope", "status", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    search_fields = ("name", "prefix")
    actions = ["revoke"]
    secret_template = "admin/accounts/managementtoken/secret_once.html"

    def get_fields(self, request, obj=None):
        return ("name", "scope", "prefix", "created_at", "last_used_at", "revoked_at") if obj else ("name", "scope")

    def get_readonly_fields(self, request, obj=None):
        return ("scope", "prefix", "created_at", "last_used_at", "revoked_at") if obj else ()

    @admin.display(description="status", ordering="revoked_at")
    def status(self, obj):
        return "revoked" if obj.revoked_at else "active"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, secret = api_tokens.token_create(name=obj.name, scope=obj.scope)
        for f in ManagementToken._meta.concrete_fields:
            setattr(obj, f.attname, getattr(token, f.attname))
        obj._state.adding = False
        obj._secret_once = ShownOnce(secret)

    def secret_context(self, request, token, secret) -> dict:
        return {
            "title": "Management token created" if secret else "Management token already shown",
            "token": token,
            "secret": secret,
            "change_url": reverse("admin:accounts_managementtoken_change", args=[token.pk]),
        }

    @admin.action(description="Revoke selected management tokens", permissions=["change"])
    def revoke(self, request, queryset):
        count = api_tokens.tokens_revoke(queryset)
        self.message_user(request, f"Revoked {count} token(s). They are refused from the next call.")
