"""What the request path knows, shown on the accounts admin pages (accounts may not import proxy, so its pages
are extended here, after accounts/admin.py registered them):

- upstream accounts: the circuit breaker's live state (closed / open / half-open, failures, cooling down until
  when and why), an action to reset it, and the "Test connection" check (proxy/checks.py);
- providers: a health column (its accounts' breakers, cooldowns and newest error) and the provider page's own
  "Test connection" button, which checks each of its accounts with the same code as the accounts' action.
  The breaker state lives in the policy state store whose format only proxy knows, so proxy adds the column
  here rather than accounts reading that store itself;
- projects and keys: spend in the current month and day against their budgets (the ledger is the truth; one
  indexed sum per period, on the change page only).
"""

import threading
import time
from datetime import datetime
from datetime import timezone as tz

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from accounts import admin as accounts_admin
from accounts.models import ApiKey, Project, Provider, ProviderAccount
from usage import selectors
from usage.money import cents, exact_title

from . import breaker, checks
from .policies import budgets

STATE_COLORS = {"closed": "#1a7f37", "half_open": "#9a6700", "open": "#b42318"}
_page = threading.local()  # breaker states read once for the page being rendered


class _ListReadsBreakers:
    def changelist_view(self, request, extra_context=None):
        # One state read for the whole page (accounts are few: a handful per provider).
        _page.states = breaker.states_now(ProviderAccount.objects.values_list("id", flat=True))
        return super().changelist_view(request, extra_context)


class AccountAdmin(_ListReadsBreakers, accounts_admin.ProviderAccountAdmin):
    list_display = (*accounts_admin.ProviderAccountAdmin.list_display[:-1], "circuit", "last_error_at")
    actions = ["test_connection", "breaker_reset", "enable", "disable"]

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "circuit")

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        return [*fields, "circuit"] if obj else fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        _page.states = breaker.states_now([int(object_id)]) if str(object_id).isdigit() else {}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="circuit breaker")
    def circuit(self, obj):
        breaker_state = self._breaker_state(obj)
        if obj.cooldown_until and obj.cooldown_until > timezone.now():  # set by hand: routing skips it till then
            return format_html('<b style="color:{}">cooling down</b> until {} UTC<br>{}', STATE_COLORS["open"],
                               f"{obj.cooldown_until:%H:%M}", breaker_state)  # fmt: skip
        return breaker_state

    def _breaker_state(self, obj):
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
        connection_test(self, request, queryset.select_related("provider"))


def connection_test(model_admin, request, accounts) -> None:
    """Probe the accounts at once (proxy/checks.py records each result as the account's last error) and say how
    each went: the accounts' bulk action and the provider page's button."""
    accounts = list(accounts)
    if not accounts:
        model_admin.message_user(request, "No accounts to test: add one first.", messages.WARNING)
    for account, result in zip(accounts, checks.accounts_check(accounts)):
        level = messages.SUCCESS if result.ok else messages.ERROR
        off = "" if account.enabled else " (disabled)"
        model_admin.message_user(request, f"{account}{off}: {result.status} in {result.latency_ms} ms: {result.detail}",
                                 level)  # fmt: skip


HEALTH_COLORS = {"ok": "#1a7f37", "degraded": "#9a6700", "down": "#b42318"}


class ProviderAdmin(_ListReadsBreakers, accounts_admin.ProviderAdmin):
    list_display = (*accounts_admin.ProviderAdmin.list_display, "health")
    change_form_template = "admin/accounts/provider/change_form_checks.html"  # the "Test connection" button

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("accounts")

    def get_urls(self):
        view = self.admin_site.admin_view(self.test_connection_view)
        return [path("<int:provider_id>/test-connection/", view, name="accounts_provider_test_connection"),
                *super().get_urls()]  # fmt: skip

    def test_connection_view(self, request, provider_id: int):
        """POST: check each of the provider's accounts, then back to its page with one message per account."""
        provider = get_object_or_404(Provider, pk=provider_id)
        if not self.has_change_permission(request, provider):
            raise PermissionDenied
        if request.method == "POST":
            connection_test(self, request, provider.accounts.select_related("provider").order_by("priority", "name"))
        return redirect(reverse("admin:accounts_provider_change", args=[provider.pk]))

    @admin.display(description="health")
    def health(self, obj):
        return provider_health(obj, list(obj.accounts.all()), getattr(_page, "states", {}), timezone.now())


def provider_health(provider, accounts, states, now):
    """"ok" (every enabled account healthy), "degraded" (some not), "down" (none), with which accounts are not and
    why, and the newest error of any account with its age (the whole text on hover)."""
    health = {a.id: breaker.account_health(a.enabled and provider.enabled, states.get(a.id, breaker.CLOSED),
                                           bool(a.cooldown_until and a.cooldown_until > now)) for a in accounts}  # fmt: skip
    live = [a for a in accounts if health[a.id] != "disabled"]
    bad = [a for a in live if health[a.id] == "unhealthy"]
    if not live:
        head = format_html('<span class="gh-quiet">{}</span>', "disabled" if accounts else "no accounts")
    else:
        label = "ok" if not bad else "down" if len(bad) == len(live) else "degraded"
        head = format_html('<b style="color:{}">{}</b> · {} of {} accounts healthy', HEALTH_COLORS[label], label,
                           len(live) - len(bad), len(live))  # fmt: skip
    why = format_html_join("", "<br>{}: {}", ((a.name, _unhealthy_reason(states.get(a.id), a, now)) for a in bad))
    last = max((a for a in accounts if a.last_error_at), key=lambda a: a.last_error_at, default=None)
    if last is None:
        return format_html("{}{}", head, why)
    error = last.last_error if len(last.last_error) <= 60 else last.last_error[:59] + "…"
    age = timesince(last.last_error_at, now).split(",")[0]
    when = "just now" if age.startswith("0\xa0") else f"{age} ago"
    return format_html('{}{}<br><span class="gh-quiet" title="{}">last error {}, {}: {}</span>', head, why,
                       last.last_error, when, last.name, error)  # fmt: skip


def _unhealthy_reason(state, account, now) -> str:
    if state is not None and state.state != "closed":
        return state.state.replace("_", "-") + (f" ({state.reason})" if state.reason else "")
    return f"cooling down until {account.cooldown_until:%H:%M} UTC"


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
    return format_html_join(mark_safe("<br>"), '<span style="color:{}" title="{}">{}</span>', rows)


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


for model, model_admin in ((ProviderAccount, AccountAdmin), (Provider, ProviderAdmin), (Project, ProjectAdmin),
                           (ApiKey, ApiKeyAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)


from . import admin_request_logs  # noqa: E402,F401  (request logs: proxy/admin_request_logs.py)
