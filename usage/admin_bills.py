"""The admin of bill sources (usage/reconcile.py): which provider account's bill comes from where, with the
vendor's admin (report) key write-only, stored encrypted like the accounts' credentials. The drift itself is a
page of its own (usage/bill_views.py), linked from this list."""

from django import forms
from django.contrib import admin

from .models import BillSource


class BillSourceForm(forms.ModelForm):
    admin_key = forms.CharField(
        required=False, strip=True, label="Admin key",
        help_text="The vendor's admin key for its usage and cost reports (Anthropic: sk-ant-admin…, OpenAI: an "
        "organization admin key), not the account's inference key. Leave empty to keep the stored one.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )  # fmt: skip

    class Meta:
        model = BillSource
        fields = ["account", "kind", "admin_key", "reports_url", "api_key_id", "project_id", "enabled"]

    def clean(self):
        data = super().clean()
        has_key = data.get("admin_key") or (self.instance.pk and self.instance.admin_key_encrypted)
        if data.get("kind") in ("anthropic_admin", "openai_admin") and not has_key:
            self.add_error("admin_key", "The vendor's reports need its admin key.")
        return data

    def save(self, commit=True):
        if self.cleaned_data.get("admin_key"):
            self.instance.set_admin_key(self.cleaned_data["admin_key"])
        return super().save(commit)


@admin.register(BillSource)
class BillSourceAdmin(admin.ModelAdmin):
    form = BillSourceForm
    list_display = ("account", "kind", "enabled", "admin_key_last4", "last_run_at", "last_error")
    list_select_related = ("account__provider",)
    readonly_fields = ("admin_key_last4", "last_run_at", "last_error")
    change_list_template = "admin/usage/billsource/change_list.html"
