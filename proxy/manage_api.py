"""Management API: live status of the request path (accounts' health and breakers, requests in flight).

Breaker states are the shared ones (Redis when configured, this process's otherwise); requests in flight are
counted by this process (proxy/selection.py): behind a balancer, each process answers for its own share, and
`process` says which one answered. Shared plumbing is in accounts/manage_common.py.
"""

import os
import time

from django.http import HttpRequest
from ninja import Router

from accounts import manage_schemas as S
from accounts.manage_common import endpoint
from accounts.models import ProviderAccount

from . import breaker, selection

router = Router(tags=["status"])


@endpoint(router.get, "/status", "Accounts' health, breaker state and requests in flight", S.Status)
def status(request: HttpRequest):
    accounts = list(ProviderAccount.objects.select_related("provider").order_by("provider__name", "name"))
    states = breaker.states_now([a.id for a in accounts])
    now = time.time()
    rows = []
    for account in accounts:
        state = states.get(account.id, breaker.CLOSED)
        rows.append({
            "provider": account.provider.name,
            "account": account.name,
            "enabled": account.enabled and account.provider.enabled,
            "breaker": state.state,
            "reason": state.reason,
            "open_for_seconds": round(max(0.0, state.open_until - now), 1) if state.state == "open" else 0,
            "recent_failures": state.failures,
            "in_flight": selection.inflight(account.id),
            "last_error": account.last_error,
            "last_error_at": account.last_error_at.isoformat() if account.last_error_at else None,
        })  # fmt: skip
    unhealthy = sum(1 for r in rows if r["breaker"] != "closed" or not r["enabled"])
    return {"process": os.getpid(), "accounts": rows, "unhealthy": unhealthy,
            "in_flight": sum(r["in_flight"] for r in rows)}  # fmt: skip
