"""Template helpers of the usage pages: number formats, and the admin index's dashboard panel."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def money(value) -> str:
    """Exact USD, as the ledger stores it: 8 decimals, thousands separated (12,345.67890000)."""
    return f"{Decimal(value or 0):,.8f}"


@register.filter
def money2(value) -> str:
    return f"${Decimal(value or 0):,.2f}"


@register.filter
def intcomma_plain(value) -> str:
    return f"{int(value or 0):,}"


@register.filter
def percent(value) -> str:
    return f"{float(value or 0) * 100:.1f}%"


@register.filter
def compact(value) -> str:
    value = int(value or 0)
    for limit, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return str(value)


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "")


@register.filter
def attr(obj, name):
    return getattr(obj, name, "")


@register.inclusion_tag("usage/dashboard.html", takes_context=True)
def usage_dashboard(context):
    """The dashboard for the admin index; only for users who may see usage (usage.views.can_view_reports)."""
    from ..dashboard import dashboard
    from ..views import can_view_reports

    request = context.get("request")
    if request is None or not can_view_reports(request.user):
        return {"show": False}
    accounts_link = request.user.has_perm("accounts.view_provideraccount")  # Finance may not open accounts
    return {"show": True, "board": dashboard(), "accounts_link": accounts_link}
