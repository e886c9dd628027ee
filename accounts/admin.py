"""Admin console for projects, client keys, providers and routes. Writes that need more than a form save go
through accounts.services; the key secret is shown once (admin/accounts/apikey/secret_once.html) and never kept.
Live state that other packages own is added to these pages there: account health and the upstream check, and
spend against budgets, in proxy/admin.py."""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Prefetch, Q
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import self_address, services
from .admin_config import ConfigOwned
from .admin_oauth import OAUTH_FIELDS, OAuthConnectAdmin
from .admin_secret import SecretOnceAdmin, ShownOnce
from .models import ApiKey, ModelRoute, Project, ProjectOptimization, ProjectRedaction, Provider, ProviderAccount
from .models import RouteTarget

STATUS_STYLE = {"active": "#1a7f37", "revoked": "#b42318", "expired": "#9a6700"}


def status_badge(status: str):
    return format_html('<b style="color:{}">{}</b>', STATUS_STYLE.get(status, "inherit"), status)


# --- projects and keys ------------------------------------------------------------------------------------


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("name", "prefix", "status_label", "created_at", "expires_at", "last_used_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "API keys (create one with the link above)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("project")  # each row is labelled with it

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="status")
    def status_label(self, obj):
        return status_badge(obj.status)


class ProjectOptimizationInline(admin.StackedInline):
    """Cost optimization (proxy/optimize): every layer off until set here; the README says what each may change."""

    model = ProjectOptimization
    can_delete = False
    extra = 1
    max_num = 1
    verbose_name = "Cost optimization (every layer off by default)"  # max_num 1: the heading uses the singular
    fieldsets = [
        ("Response cache", {"fields": ("response_cache_ttl", "response_cache_models", "response_cache_any")}),
        ("Token reduction", {"fields": ("cache_breakpoints", "stable_prefix", "strip_boilerplate",
                                        "boilerplate_markers", "dedupe_tool_results", "cap_system_chars",
                                        "cap_message_chars", "cap_tool_result_chars",
                                        "cap_tool_description_chars", "drop_tools", "prune_max_tokens",
                                        "diff_first", "diff_first_text")}),
        ("Smart routing (model aliases; empty = the model asked for)",
         {"fields": ("route_background", "route_think", "route_long_context", "long_context_tokens",
                     "route_web_search", "route_complex", "complexity_threshold", "complexity_keywords",
                     "route_default")}),
    ]  # fmt: skip
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 80})}}


class ProjectRedactionInline(admin.StackedInline):
    """Redaction (proxy/redact.py): every rule off until set here; docs/redaction.md says what each may change."""

    model = ProjectRedaction
    can_delete = False
    extra = 1
    max_num = 1
    verbose_name = "Redaction of secrets and personal data (off by default)"
    fields = ("secrets", "pii", "rules")


@admin.register(Project)
class ProjectAdmin(ConfigOwned, admin.ModelAdmin):
    list_display = ("slug", "name", "active", "active_keys", "rpm_limit", "tpm_limit", "monthly_budget_usd",
                    "created_at")  # fmt: skip
    list_display_links = ("slug", "name")
    list_filter = ("active",)
    search_fields = ("slug", "name")
    date_hierarchy = "created_at"
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = [
        (None, {"fields": ("name", "slug", "active", "new_key_link", "allowed_models", "created_at")}),
        ("Limits (empty = unlimited)", {"fields": ("rpm_limit", "tpm_limit")}),
        ("Budgets (USD, calendar periods in UTC; empty = unlimited)",
         {"fields": ("monthly_budget_usd", "daily_budget_usd", "budget_alert_percent")}),
        ("Request logs (docs/request-logs.md)",
         {"fields": ("request_log_mode", "request_log_retention_days", "request_log_max_bytes")}),
    ]  # fmt: skip
    readonly_fields = ("new_key_link", "created_at")
    inlines = [ApiKeyInline, ProjectOptimizationInline, ProjectRedactionInline]

    def get_queryset(self, request):
        unexpired = Q(keys__expires_at__isnull=True) | Q(keys__expires_at__gt=timezone.now())
        active = Q(keys__revoked_at__isnull=True) & unexpired
        return super().get_queryset(request).annotate(active_key_count=Count("keys", filter=active))

    @admin.display(description="active keys", ordering="active_key_count")
    def active_keys(self, obj):
        return obj.active_key_count

    @admin.display(description="API keys")
    def new_key_link(self, obj):
        if not obj or not obj.pk:
            return "Save the project first, then create its keys."
        url = reverse("admin:accounts_apikey_add") + f"?project={obj.pk}"
        return format_html('<a class="addlink" href="{}">Create an API key for this project</a>', url)


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("revoked", "revoked"), ("expired", "expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(SecretOnceAdmin):
    list_display = ("name", "project", "prefix", "status_label", "created_at", "expires_at", "last_used_at")
    list_filter = (ApiKeyStatusFilter, "project")
    list_select_related = ("project",)
    search_fields = ("name", "prefix", "project__slug", "project__name")
    date_hierarchy = "created_at"
    actions = ["revoke"]

    LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "max_concurrent", "monthly_budget_usd", "daily_budget_usd")
    add_fields = ("project", "name", "expires_at", "allowed_models", *LIMIT_FIELDS)
    change_fields = ("project", "name", "prefix", "status_label", "expires_at", "allowed_models", *LIMIT_FIELDS,
                     "created_at", "last_used_at", "revoked_at")  # fmt: skip
    help_texts = {
        "name": "Who or what uses this key, e.g. “ci-bot” or “alice laptop”.",
        "expires_at": "Leave empty for a key that never expires. You can always revoke it instead.",
        "rpm_limit": "Leave empty to use the project's limit only.",
        "tpm_limit": "Leave empty to use the project's limit only.",
        "max_concurrent": "Requests this key may have in flight at once. Leave empty for no cap.",
        "monthly_budget_usd": "Leave empty to use the project's budget only.",
        "daily_budget_usd": "Leave empty to use the project's budget only.",
    }

    def get_fields(self, request, obj=None):
        return self.change_fields if obj else self.add_fields

    def get_readonly_fields(self, request, obj=None):
        return ("project", "prefix", "status_label", "created_at", "last_used_at", "revoked_at") if obj else ()

    def get_form(self, request, obj=None, **kwargs):
        kwargs["help_texts"] = {**self.help_texts, **kwargs.get("help_texts", {})}
        return super().get_form(request, obj, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            kwargs["queryset"] = Project.objects.filter(active=True)
            kwargs["help_text"] = "The key spends this project's budget and limits."
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="status", ordering="revoked_at")
    def status_label(self, obj):
        return status_badge(obj.status)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, secret = services.key_issue(
            project=obj.project,
            name=obj.name,
            expires_at=obj.expires_at,
            allowed_models=obj.allowed_models,
            **{name: getattr(obj, name) for name in self.LIMIT_FIELDS},
        )
        for f in ApiKey._meta.concrete_fields:
            setattr(obj, f.attname, getattr(key, f.attname))
        obj._state.adding = False
        obj._secret_once = ShownOnce(secret)  # read and dropped by response_add, within this request

    secret_template = "admin/accounts/apikey/secret_once.html"

    def secret_context(self, request, key, secret) -> dict:
        return {
            "title": "API key created" if secret else "API key already shown",
            "key": key,
            "secret": secret,
            "change_url": reverse("admin:accounts_apikey_change", args=[key.pk]),
            "project_url": reverse("admin:accounts_project_change", args=[key.project_id]),
            "another_url": reverse("admin:accounts_apikey_add") + f"?project={key.project_id}",
        }

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        count = services.keys_revoke(queryset)
        self.message_user(request, f"Revoked {count} key(s). Clients using them get 401 within seconds.")


# --- providers and accounts -------------------------------------------------------------------------------


class ProviderAccountForm(forms.ModelForm):
    """The credential is write-only: typed here, stored encrypted, shown back only as its last 4 characters."""

    credential = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The upstream API key (not for OAuth accounts: use Connect). Leave empty to keep the current one.",
    )

    class Meta:
        model = ProviderAccount
        fields = ["provider", "name", "kind", "credential", "weight", "priority", "enabled", "cooldown_until"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].required = False  # absent (older forms, scripts): an API key account
        if "credential" in self.fields and self.instance.credential_last4:  # what is kept when left empty
            self.fields["credential"].widget.attrs["placeholder"] = f"{self.instance.credential_last4} (kept)"

    def clean_kind(self):
        return self.cleaned_data.get("kind") or "api_key"

    def save(self, commit=True):
        if self.cleaned_data.get("credential"):
            self.instance.set_credential(self.cleaned_data["credential"])
        return super().save(commit)


class ProviderAccountInline(admin.TabularInline):
    model = ProviderAccount
    form = ProviderAccountForm
    fields = ("name", "kind", "credential", "weight", "priority", "enabled", "last_error")  # last 4: the placeholder
    readonly_fields = ("last_error",)
    extra = 0
    show_change_link = True


class _EnableActions:
    @admin.action(description="Enable selected", permissions=["change"])
    def enable(self, request, queryset):
        self.message_user(request, f"Enabled {services.enabled_set(queryset, True)}.")

    @admin.action(description="Disable selected", permissions=["change"])
    def disable(self, request, queryset):
        self.message_user(request, f"Disabled {services.enabled_set(queryset, False)}.")


@admin.register(Provider)
class ProviderAdmin(ConfigOwned, _EnableActions, admin.ModelAdmin):
    list_display = ("name", "preset", "kind", "base_url", "enabled", "accounts_summary")
    list_filter = ("preset", "kind", "enabled")
    search_fields = ("name", "base_url")
    actions = ["enable", "disable"]
    inlines = [ProviderAccountInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ("name", "preset", "kind", "base_url", "enabled")}),
        ("Capabilities", {"fields": ("capabilities", "capabilities_effective")}),
        ("Connection", {"fields": ("connect_timeout", "read_timeout", "extra_headers")}),
    ]
    readonly_fields = ("capabilities_effective",)

    @admin.display(description="effective capabilities")
    def capabilities_effective(self, obj):
        """The preset's values with this provider's overrides applied: what requests are built with."""
        if obj is None or obj.pk is None:
            return "Shown after saving."
        rows = ((name, value) for name, value in obj.resolved_capabilities().as_dict().items())
        return format_html('<table class="capabilities">{}</table>',
                           format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            account_count=Count("accounts"), enabled_count=Count("accounts", filter=Q(accounts__enabled=True))
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if loop := self_address.warning(obj.name, obj.base_url):  # saved all the same: a warning, not a refusal
            messages.warning(request, loop)

    @admin.display(description="accounts", ordering="account_count")
    def accounts_summary(self, obj):
        url = reverse("admin:accounts_provideraccount_changelist") + f"?provider__id__exact={obj.pk}"
        return format_html('<a href="{}">{} ({} enabled)</a>', url, obj.account_count, obj.enabled_count)


@admin.register(ProviderAccount)
class ProviderAccountAdmin(OAuthConnectAdmin, ConfigOwned, _EnableActions, admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ("__str__", "provider", "kind", "enabled", "priority", "weight", "credential_last4", "last_error_at")
    list_filter = ("enabled", "kind", "provider__kind", "provider")
    list_select_related = ("provider",)
    search_fields = ("name", "provider__name", "last_error")
    readonly_fields = ("credential_last4", "last_error", "last_error_at", *OAUTH_FIELDS)
    actions = ["enable", "disable"]  # proxy/admin.py adds the upstream check and the breaker's state and reset

    def get_fields(self, request, obj=None):
        fields = ["provider", "name", "kind", "credential", "credential_last4", "weight", "priority", "enabled",
                  "cooldown_until", "last_error", "last_error_at"]  # fmt: skip
        if obj is not None and obj.kind == "anthropic_oauth":  # the tokens are never shown, only their state
            fields = [f for f in fields if f != "credential"] + list(OAUTH_FIELDS)
        return fields if obj else [f for f in fields if f not in self.readonly_fields]


# --- model routes -----------------------------------------------------------------------------------------


class RouteTargetInline(admin.TabularInline):
    model = RouteTarget
    fields = ("provider", "remote_model", "priority", "weight")
    extra = 1
    verbose_name_plural = "targets (tried by priority; equal priorities share traffic by weight)"


@admin.register(ModelRoute)
class ModelRouteAdmin(ConfigOwned, _EnableActions, admin.ModelAdmin):
    list_display = ("alias", "display_name", "enabled", "targets_summary", "default_max_tokens", "max_output_tokens",
                    "created_at")  # fmt: skip
    list_filter = ("enabled", "targets__provider")
    search_fields = ("alias", "display_name", "targets__remote_model")
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ("alias", "display_name", "enabled", "default_max_tokens", "max_output_tokens")}),
        ("Response cache", {"fields": ("response_cache_ttl",)}),
        ("Account selection and retries", {"fields": ("strategy", "on_all_open", "retry_max_attempts",
                                                      "retry_base_ms", "retry_cap_ms", "retry_deadline_seconds")}),
    ]  # fmt: skip
    actions = ["enable", "disable"]
    inlines = [RouteTargetInline]

    def get_queryset(self, request):
        targets = RouteTarget.objects.select_related("provider")
        return super().get_queryset(request).prefetch_related(Prefetch("targets", queryset=targets))

    @admin.display(description="targets")
    def targets_summary(self, obj):
        return format_html_join(", ", "{}", ((str(t),) for t in obj.targets.all())) or "—"


@admin.register(RouteTarget)
class RouteTargetAdmin(admin.ModelAdmin):
    list_display = ("route", "provider", "remote_model", "priority", "weight")
    list_filter = ("provider",)
    list_select_related = ("route", "provider")
    search_fields = ("route__alias", "remote_model", "provider__name")
    ordering = ("route__alias", "priority", "id")
from . import admin_tokens  # noqa: E402,F401  (management tokens: accounts/admin_tokens.py)
from . import admin_audit  # noqa: E402,F401  (the audit trail: accounts/admin_audit.py)
