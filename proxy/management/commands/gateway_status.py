"""`manage.py gateway_status [--json] [--server URL]`: every provider and account with its health, breaker
state, cooldown, requests in flight, and today's requests and spend, as a table or one JSON document.

Breakers live where the serving processes keep them: in Redis when REDIS_URL is set, else in each server
process's memory, which this command cannot see. So the breaker and health come from, in this order:
  --server URL   the running server's /manage/v1/status (with a management token: --token or
                 GATEWAY_MANAGE_TOKEN; a read token is enough), which also gives its requests in flight;
  Redis          the shared state, when REDIS_URL is set and answers;
  nowhere        "unknown" (never a "closed"/"ok" this command cannot know), with a note saying how to know.
Today's figures and the cooldowns an account's refused credential set come from the database. Every failure
to read the server is one line naming the server and what went wrong (exit status 1).
"""

import os
import time

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.management.output import write_json, write_table
from accounts.models import ProviderAccount
from proxy import breaker
from proxy.policies.store import redis_status
from usage.models import UsageRecord
from usage.selectors import day_start

COLUMNS = ("provider", "preset", "account", "health", "breaker", "cooldown_s", "in_flight", "requests_today",
           "spend_today_usd", "last_error")  # fmt: skip
NO_SHARED_STATE = "Without REDIS_URL each server process keeps its own"
REDIS_DOWN = "Redis (REDIS_URL) did not answer"
UNKNOWN_NOTE = ("Breaker states: unknown. {why}; read a running server's with --server URL (and a management token: "
                "--token or GATEWAY_MANAGE_TOKEN).")  # fmt: skip


class Command(BaseCommand):
    help = "Providers and accounts with health, breaker state, cooldown, in-flight requests, today's requests and spend."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")
        parser.add_argument("--server", help="a running gateway's URL, to read its breakers and requests in flight")
        parser.add_argument("--token", default=os.environ.get("GATEWAY_MANAGE_TOKEN", ""),
                            help="management token for --server (default: $GATEWAY_MANAGE_TOKEN)")  # fmt: skip

    def handle(self, *args, **options):
        live = read_server(options["server"], options["token"]) if options["server"] else None
        rows, source = status_rows(live)
        if options["json"]:
            unhealthy = sum(1 for r in rows if r["health"] in ("unhealthy", "disabled"))
            write_json(self, {"accounts": rows, "breakers_from": source, "unhealthy": unhealthy})
        elif not rows:
            self.stdout.write("No provider accounts yet. Add one in the admin or with apply_config.")
        else:
            write_table(self, COLUMNS, rows, flagged=lambda row: row["health"] != "ok")
        if source == "unknown" and rows:
            self.stderr.write(UNKNOWN_NOTE.format(why=REDIS_DOWN if settings.REDIS_URL else NO_SHARED_STATE))


def status_rows(live: dict | None = None) -> tuple[list[dict], str]:
    """The rows, and where their breaker states came from: "server", "redis" or "unknown". `live`: the server's
    rows by (provider, account), as read_server returns them."""
    accounts = list(ProviderAccount.objects.select_related("provider").order_by("provider__name", "name"))
    states, source = _breaker_states(accounts, live)
    today = _today_by_account()
    now = timezone.now()
    rows = []
    for account in accounts:
        key = (account.provider.name, account.name)
        state, open_s = states.get(account.id, (None, 0.0))  # None: not known
        cooling = account.cooldown_until and account.cooldown_until > now
        cooldown = max(open_s, (account.cooldown_until - now).total_seconds() if cooling else 0.0)
        requests, spend = today.get(key, (0, 0))
        rows.append({
            "provider": account.provider.name,
            "preset": account.provider.preset_name,
            "account": account.name,
            "health": breaker.account_health(account.enabled and account.provider.enabled, state, cooling),
            "breaker": "unknown" if state is None else state.state + (f" ({state.reason})" if state.reason else ""),
            "cooldown_s": round(cooldown, 1),
            "in_flight": live[key]["in_flight"] if live and key in live else None,
            "requests_today": requests,
            "spend_today_usd": f"{spend or 0:.4f}",
            "last_error": account.last_error,
        })  # fmt: skip
    return rows, source


def _breaker_states(accounts, live: dict | None) -> tuple[dict, str]:
    """account id -> (BreakerState, seconds it stays open) for the accounts whose state is known."""
    if live is not None:
        states = {}
        for a in accounts:
            row = live.get((a.provider.name, a.name))
            if row is not None:  # an account newer than the server's answer stays unknown
                state = breaker.BreakerState(row["breaker"], row.get("recent_failures", 0), 0.0, row.get("reason", ""))
                states[a.id] = (state, float(row.get("open_for_seconds") or 0))
        return states, "server"
    if not settings.REDIS_URL:
        return {}, "unknown"
    shared = breaker.states_now([a.id for a in accounts])
    if redis_status() != "ok":  # Redis did not answer: this process's own (empty) state would say "closed"
        return {}, "unknown"
    wall = time.time()
    return {a.id: _with_open_s(shared.get(a.id, breaker.CLOSED), wall) for a in accounts}, "redis"


def _with_open_s(state, wall: float):
    return state, max(0.0, state.open_until - wall) if state.state != "closed" else 0.0


def _today_by_account() -> dict[tuple[str, str], tuple[int, object]]:
    rows = (
        UsageRecord.objects.filter(created_at__gte=day_start(timezone.localdate()))
        .order_by().values("provider", "account").annotate(n=Count("id"), cost=Sum("cost_usd"))
    )  # fmt: skip
    return {(r["provider"], r["account"]): (r["n"], r["cost"]) for r in rows}


def read_server(server: str, token: str) -> dict[tuple[str, str], dict]:
    """The server's /manage/v1/status rows by (provider, account); a CommandError of one line otherwise."""
    token = token.strip()
    if not token:
        raise CommandError(f"--server {server} needs a management token: give --token or set GATEWAY_MANAGE_TOKEN "
                           "(a read token is enough; create one in the admin, Management tokens)")  # fmt: skip
    url = server.rstrip("/") + "/manage/v1/status"
    try:
        response = httpx.get(url, timeout=5, headers={"authorization": f"Bearer {token}"})
    except httpx.TimeoutException:
        raise CommandError(f"{url} did not answer within 5 seconds") from None
    except httpx.HTTPError as e:  # refused, unknown host, not an http(s) URL, a token no header can carry
        raise CommandError(f"could not reach {url}: {e or type(e).__name__}") from None
    if response.status_code in (401, 403):
        raise CommandError(f"{url} refused the management token ({response.status_code}: {_message(response)})")
    if response.status_code != 200:
        raise CommandError(f"{url} answered {response.status_code}: {_message(response)}")
    try:
        return {(r["provider"], r["account"]): r for r in response.json()["accounts"]}
    except (ValueError, KeyError, TypeError):
        raise CommandError(f"{url} did not answer with a Gatehouse status document") from None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase or "no message"
