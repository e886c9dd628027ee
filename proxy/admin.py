"""What the request path knows, shown on the accounts admin pages (accounts may not import proxy, so its pages
are extended here, after accounts/admin.py registered them):

- upstream accounts: the circuit breaker's live state (closed / open / half-open, failures, cooling down until
  when and why), an action to reset it, and the "Test connection" check (proxy/checks.py);
- projects and keys: spend in the current month and day against their budgets (the ledger is the truth; one
  indexed sum per period, on the change page only).
"""

import threading
import time
from datetime import datetime
from datetime import timezone as tz

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from accounts import admin as accounts_admin
from accounts.models import ApiKey, Project, ProviderAccount
from usage import selectors
from usage.money import cents, exact_title

from . import breaker, checks
from .policies import budgets

STATE_COLORS = {"closed": "#1a7f37", "half_open": "#9a6700", "open": "#b42318"}
_page = threading.local()  # breaker states read once for the page being rendered


class AccountAdmin(accounts_admin.ProviderAccountAdmin):
    list_display = (*accounts_admin.ProviderAccountAdmin.list_display[:-1], "circuit", "last_error_at")
    actions = ["test_connection", "breaker_reset", "enable", "disable"]

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "circuit")

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        return [*fields, "circuit"] if obj else fields

    def changelist_view(self, request, extra_context=None):
        # One state read for the whole page (accounts are few: a handful per provider).
        _page.states = breaker.states_now(ProviderAccount.objects.values_list("id", flat=True))
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        _page.states = breaker.states_now([int(object_id)]) if str(object_id).isdigit() else {}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="circuit breaker")
    def circuit(self, obj):
        state = getattr(_page, "states", {}).get(obj.id)
        if state is None or (state.state == "closed" and not state.failures):
            return format_html('<span style="color:{}">closed</span>', STATE_COLORS["closed"])
        detail = f"{state.failures} failures"
        if state.open_until > time.time():
            until = datetime.fromtimestamp(state.open_until, tz=tz.utc).strftime("%H:%M:%S UTC")
            detail += f", cooling down until {until}" + (f" ({state.reason})" if state.reason else "")
        label = state.state.replace("_", "-")
        return format_html('<b style="color:{}">{}</b> · {}', STATE_COLORS.get(state.state, "inherit"), label, detail)

    @admin.action(description="Reset the circuit breaker (back to closed)", permissions=["change"])
    def breaker_reset(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        breaker.reset_now(ids)
        self.message_user(request, f"Reset the circuit breaker of {len(ids)} account(s).")

    @admin.action(description="Test connection (lists the upstream's models)", permissions=["change"])
    def test_connection(self, request, queryset):
        for account in queryset.select_related("provider"):
            result = checks.account_check(account)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{account}: {result.status} in {result.latency_ms} ms: {result.detail}", level)


def spend_lines(*, project_id=None, key_id=None, month_budget, day_budget, alert_percent: int):
    """'This month: $3.12 of $10.00 (31%)' and the same for today; red from the alert share on."""
    periods = budgets.periods(datetime.now(tz.utc))
    rows = []
    for label, period, budget in (("This month", "m", month_budget), ("Today", "d", day_budget)):
        spent = selectors.spend_since(project_id=project_id, key_id=key_id, since=periods[period][1])
        if budget:
            share = int(spent * 100 / budget)
            color = "#b42318" if share >= alert_percent else "inherit"
            rows.append((color, exact_title(spent), f"{label}: {cents(spent)} of {cents(budget)} ({share}%)"))
        else:
            rows.append(("inherit", exact_title(spent), f"{label}: {cents(spent)} (no budget)"))
    # cents on the page, the exact amount on hover (usage/money.py, docs/finance.md)
    return format_html_join(format_html("<br>"), '<span style="color:{}" title="{}">{}</span>', rows)


class ProjectAdmin(accounts_admin.ProjectAdmin):
    fieldsets = [
        *accounts_admin.ProjectAdmin.fieldsets[:-1],
        (accounts_admin.ProjectAdmin.fieldsets[-1][0],
         {"fields": (*accounts_admin.ProjectAdmin.fieldsets[-1][1]["fields"], "spend")}),
    ]  # fmt: skip
    readonly_fields = (*accounts_admin.ProjectAdmin.readonly_fields, "spend")

    @admin.display(description="spend")
    def spend(self, obj):
        if not obj.pk:
            return "—"
        return spend_lines(project_id=obj.pk, month_budget=obj.monthly_budget_usd, day_budget=obj.daily_budget_usd,
                           alert_percent=obj.budget_alert_percent)  # fmt: skip


class ApiKeyAdmin(accounts_admin.ApiKeyAdmin):
    change_fields = (*accounts_admin.ApiKeyAdmin.change_fields, "spend")

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "spend") if obj else ()

    @admin.display(description="spend")
    def spend(self, obj):
        return spend_lines(key_id=obj.pk, month_budget=obj.monthly_budget_usd, day_budget=obj.daily_budget_usd,
                           alert_percent=obj.project.budget_alert_percent)  # fmt: skip


for model, model_admin in ((ProviderAccount, AccountAdmin), (Project, ProjectAdmin), (ApiKey, ApiKeyAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)


from . import admin_request_logs  # noqa: E402,F401  (request logs: proxy/admin_request_logs.py)
