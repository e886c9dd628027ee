from django.core.management.base import BaseCommand, CommandError

from accounts.models import ProviderAccount
from proxy.checks import CHECK_TIMEOUT, account_check


class Command(BaseCommand):
    help = (
        "Call each enabled provider account's model list upstream and print a status table. "
        "Exits non-zero if any account fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=CHECK_TIMEOUT, help="seconds per call (default 10)")

    def handle(self, *args, timeout, **options):
        accounts = ProviderAccount.objects.filter(enabled=True, provider__enabled=True).select_related("provider")
        rows = []
        for account in accounts:
            result = account_check(account, timeout=timeout)
            p = account.provider
            rows.append((p.name, account.name, p.kind, result.status, str(result.latency_ms), result.detail, result.ok))
        if not rows:
            self.stdout.write("No enabled provider accounts. Add one in the admin or with apply_config.")
            return
        header = ("PROVIDER", "ACCOUNT", "KIND", "STATUS", "LATENCY_MS", "DETAIL")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
        for row in [header, *rows]:
            line = "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5]
            ok = row is header or row[6]
            self.stdout.write(line if ok else self.style.ERROR(line))
        failed = sum(1 for r in rows if not r[6])
        if failed:
            raise CommandError(f"{failed} of {len(rows)} account(s) failed")
        self.stdout.write(self.style.SUCCESS(f"All {len(rows)} account(s) OK."))
