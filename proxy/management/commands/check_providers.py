"""`manage.py check_providers`: probe every enabled account at once (the model list, or a one-token request
where the preset has no model list; proxy/checks.py), each within --timeout, and print latency and the error
for each. Exit status 1 when any probe fails, so cron or a container health check can use it."""

from django.core.management.base import BaseCommand, CommandError

from accounts.management.output import write_json, write_table
from accounts.models import ProviderAccount
from proxy.checks import CHECK_TIMEOUT, accounts_check

COLUMNS = ("provider", "account", "kind", "status", "latency_ms", "detail")


class Command(BaseCommand):
    help = (
        "Probe each enabled provider account in parallel (model list, or a one-token request) and print a status "
        "table. Exits non-zero if any account fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=CHECK_TIMEOUT, help="seconds per probe (default 10)")
        parser.add_argument("--provider", action="append", help="only this provider (repeatable)")
        parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")

    def handle(self, *args, timeout, provider, **options):
        as_json = options["json"]
        accounts = ProviderAccount.objects.filter(enabled=True, provider__enabled=True).select_related("provider")
        if provider:
            accounts = accounts.filter(provider__name__in=provider)
        accounts = list(accounts)
        if not accounts:
            self.stdout.write("No enabled provider accounts. Add one in the admin or with apply_config.")
            return
        results = accounts_check(accounts, timeout=timeout)
        self._print(accounts, results, as_json=as_json)
        failed = sum(1 for r in results if not r.ok)
        if failed:
            raise CommandError(f"{failed} of {len(results)} account(s) failed")
        if not as_json:
            self.stdout.write(self.style.SUCCESS(f"All {len(results)} account(s) OK."))

    def _print(self, accounts, results, *, as_json: bool) -> None:
        rows = [
            {"provider": a.provider.name, "account": a.name, "kind": a.provider.kind, "preset": a.provider.preset_name,
             "ok": r.ok,
             "status": r.status, "latency_ms": r.latency_ms, "detail": r.detail}
            for a, r in zip(accounts, results)
        ]  # fmt: skip
        if as_json:
            write_json(self, {"accounts": rows, "failed": sum(not r["ok"] for r in rows)})
        else:
            write_table(self, COLUMNS, rows, flagged=lambda row: not row["ok"])
