"""Reads of the ledger, for whoever needs numbers: budgets (proxy.policies), the admin pages, reports.
Every query here is served by an index on (project, created_at) or (api_key, created_at)."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from .models import UsageRecord


def spend_since(*, project_id: int | None = None, key_id: int | None = None, since: datetime) -> Decimal:
    """Total cost of one project's or one key's requests since `since` (exact Decimal)."""
    rows = UsageRecord.objects.filter(created_at__gte=since)
    rows = rows.filter(project_id=project_id) if project_id is not None else rows.filter(api_key_id=key_id)
    return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
