"""Template helpers of the usage pages: number formats (money through usage/money.py), the admin index's dashboard
panel, and the unpriced marker on a model route's admin page."""

from django import template

from ..money import cents as money_cents
from ..money import exact_title, usd_html

register = template.Library()


@register.filter
def money(value) -> str:
    """Money as a person reads it: cents, the exact amount on hover (usage/money.py, docs/finance.md)."""
    return usd_html(value)


@register.filter
def cents(value) -> str:
    """Cents as plain text (inside a sentence or an attribute)."""
    return money_cents(value)


@register.filter
def exact(value) -> str:
    """The exact amount as a person reads it ("$1,256.20585066"), for a hover title next to cents."""
    return exact_title(value)


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
    price_link = request.user.has_perm("usage.add_modelprice")
    return {"show": True, "board": dashboard(), "accounts_link": accounts_link, "price_link": price_link}


@register.inclusion_tag("usage/unpriced_marker.html", takes_context=True)
def unpriced_marker(context, route):
    """The unpriced marker on a route's admin page (templates/admin/accounts/modelroute/change_form.html): the
    models this route sent traffic to in the last UNPRICED_DAYS with no price. It lives in usage, and the accounts
    admin only names it in a template, so accounts never imports usage."""
    from datetime import timedelta

    from django.utils import timezone

    from ..selectors import unpriced_models

    request = context.get("request")
    if route is None or getattr(route, "pk", None) is None:
        return {"unpriced": []}  # a route being added has no traffic
    today = timezone.localdate()
    found = [u for u in unpriced_models(today - timedelta(days=UNPRICED_DAYS - 1), today) if route.alias in u.aliases]
    can_price = request is not None and request.user.has_perm("usage.add_modelprice")
    return {"unpriced": found, "period": f"in the last {UNPRICED_DAYS} days", "can_price": can_price}


UNPRICED_DAYS = 30
