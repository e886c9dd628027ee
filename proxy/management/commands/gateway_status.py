"""`manage.py gateway_status [--json] [--server URL]`: every provider and account with its health, breaker
state, cooldown, requests in flight, and today's requests and spend, as a table or one JSON document.

Breaker states are the shared ones (Redis when configured); today's figures come from the ledger. Requests in
flight are counted by each serving process (proxy/selection.py), so this command can only know them by asking
a running server: `--server http://gateway:8000` with a management token (`--token` or GATEWAY_MANAGE_TOKEN)
reads its /manage/v1/status; without it the column shows "-".
"""

import os
import time

import httpx
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.management.output import write_json, write_table
from accounts.models import ProviderAccount
from proxy import breaker
from usage.models import UsageRecord
from usage.selectors import day_start

COLUMNS = ("provider", "preset", "account", "health", "breaker", "cooldown_s", "in_flight", "requests_today",
           "spend_today_usd", "last_error")  # fmt: skip


class Command(BaseCommand):
    help = "Providers and accounts with health, breaker state, cooldown, in-flight requests, today's requests and spend."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")
        parser.add_argument("--server", help="a running gateway's URL, to read its requests in flight")
        parser.add_argument("--token", default=os.environ.get("GATEWAY_MANAGE_TOKEN", ""),
                            help="management token for --server (default: $GATEWAY_MANAGE_TOKEN)")  # fmt: skip

    def handle(self, *args, **options):
        rows = status_rows(in_flight=_server_in_flight(options["server"], options["token"]))
        if options["json"]:
            write_json(self, {"accounts": rows, "unhealthy": sum(1 for r in rows if r["health"] != "ok")})
        elif not rows:
            self.stdout.write("No provider accounts yet. Add one in the admin or with apply_config.")
        else:
            write_table(self, COLUMNS, rows, flagged=lambda row: row["health"] != "ok")


def status_rows(in_flight: dict | None = None) -> list[dict]:
    accounts = list(ProviderAccount.objects.select_related("provider").order_by("provider__name", "name"))
    states = breaker.states_now([a.id for a in accounts])
    today = _today_by_account()
    now, wall = timezone.now(), time.time()
    rows = []
    for account in accounts:
        state = states.get(account.id, breaker.CLOSED)
        cooling = account.cooldown_until and account.cooldown_until > now
        open_s = max(0.0, state.open_until - wall) if state.state != "closed" else 0.0
        cooldown = max(open_s, (account.cooldown_until - now).total_seconds() if cooling else 0.0)
        requests, spend = today.get((account.provider.name, account.name), (0, 0))
        enabled = account.enabled and account.provider.enabled
        rows.append({
            "provider": account.provider.name,
            "preset": account.provider.preset_name,
            "account": account.name,
            "health": "disabled" if not enabled else ("ok" if state.state == "closed" and not cooling else "unhealthy"),
            "breaker": state.state + (f" ({state.reason})" if state.reason else ""),
            "cooldown_s": round(cooldown, 1),
            "in_flight": None if in_flight is None else in_flight.get((account.provider.name, account.name), 0),
            "requests_today": requests,
            "spend_today_usd": f"{spend or 0:.4f}",
            "last_error": account.last_error,
        })  # fmt: skip
    return rows


def _today_by_account() -> dict[tuple[str, str], tuple[int, object]]:
    rows = (
        UsageRecord.objects.filter(created_at__gte=day_start(timezone.localdate()))
        .order_by().values("provider", "account").annotate(n=Count("id"), cost=Sum("cost_usd"))
    )  # fmt: skip
    return {(r["provider"], r["account"]): (r["n"], r["cost"]) for r in rows}


def _server_in_flight(server: str | None, token: str) -> dict | None:
    if not server:
        return None
    try:
        response = httpx.get(server.rstrip("/") + "/manage/v1/status", timeout=5,
                             headers={"authorization": f"Bearer {token}"})  # fmt: skip
        response.raise_for_status()
        return {(r["provider"], r["account"]): r["in_flight"] for r in response.json()["accounts"]}
    except (httpx.HTTPError, ValueError, KeyError) as e:
        raise CommandError(f"could not read requests in flight from {server}: {type(e).__name__}: {e}") from None
