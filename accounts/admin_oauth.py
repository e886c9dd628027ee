"""The admin's "Connect" page for Anthropic OAuth accounts (accounts/oauth.py): it starts the PKCE flow, shows
the authorize URL to open, takes the code the sign-in page shows, and stores the tokens. The account page shows
the token's expiry, the last refresh and the last error, never the tokens."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from . import oauth
from .models import ProviderAccount

OAUTH_FIELDS = ("oauth_expires_at", "oauth_refreshed_at", "connect_link")


class OAuthConnectAdmin:
    """Mixed into ProviderAccountAdmin."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.connect_view)
        return [path("<int:account_id>/connect/", view, name="accounts_provideraccount_connect"), *super().get_urls()]

    def connect_link(self, obj):
        if obj is None or obj.pk is None or obj.kind != "anthropic_oauth":
            return "Only for Anthropic OAuth accounts (save with that kind first)."
        url = reverse("admin:accounts_provideraccount_connect", args=[obj.pk])
        label = "Reconnect" if obj.oauth_expires_at else "Connect"
        return format_html('<a class="button" href="{}">{}</a>', url, label)

    connect_link.short_description = "connection"

    def connect_view(self, request, account_id: int):
        account = get_object_or_404(ProviderAccount.objects.select_related("provider"), pk=account_id)
        if not self.has_change_permission(request, account):
            raise PermissionDenied
        if account.provider.kind != "anthropic":
            messages.error(request, "OAuth accounts belong to an Anthropic provider.")
            return redirect(reverse("admin:accounts_provideraccount_change", args=[account.pk]))
        if request.method == "POST":
            try:
                expires = oauth.connect_finish(account, request.POST.get("code", ""))
            except oauth.OAuthError as e:
                messages.error(request, f"Not connected: {e}")
            else:
                messages.success(request, f"Connected; the token expires {expires:%Y-%m-%d %H:%M} UTC and is "
                                          "refreshed automatically.")  # fmt: skip
                return redirect(reverse("admin:accounts_provideraccount_change", args=[account.pk]))
        context = {**self.admin_site.each_context(request), "title": f"Connect {account}", "account": account,
                   "opts": self.model._meta, "authorize_url": oauth.connect_start(account)}  # fmt: skip
        return TemplateResponse(request, "admin/accounts/provideraccount/connect.html", context)
