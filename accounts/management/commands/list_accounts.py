"""`manage.py list_accounts [--provider NAME] [--enabled|--disabled] [--json]`: upstream accounts with their
provider, preset, credential's last characters (never the credential), order and last error."""

from django.core.management.base import BaseCommand

from accounts.management.output import write_json, write_table
from accounts.models import ProviderAccount

COLUMNS = ("provider", "preset", "account", "credential", "enabled", "priority", "weight", "last_error")


class Command(BaseCommand):
    help = "List upstream provider accounts (credentials are never shown, only their last characters)."

    def add_arguments(self, parser):
        parser.add_argument("--provider", action="append", help="only this provider (repeatable)")
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--enabled", action="store_true", help="only enabled accounts of enabled providers")
        state.add_argument("--disabled", action="store_true", help="only accounts that cannot serve (either off)")
        parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")

    def handle(self, *args, **options):
        accounts = ProviderAccount.objects.select_related("provider").order_by("provider__name", "priority", "name")
        if options["provider"]:
            accounts = accounts.filter(provider__name__in=options["provider"])
        rows = [_row(a) for a in accounts]
        if options["enabled"] or options["disabled"]:
            rows = [r for r in rows if r["enabled"] == bool(options["enabled"])]
        if options["json"]:
            write_json(self, {"accounts": rows})
        elif rows:
            write_table(self, COLUMNS, rows, flagged=lambda row: not row["enabled"])
        else:
            self.stdout.write("No accounts match.")


def _row(account: ProviderAccount) -> dict:
    return {
        "provider": account.provider.name,
        "preset": account.provider.preset_name,
        "account": account.name,
        "credential": account.credential_last4 or "(none)",
        "enabled": account.enabled and account.provider.enabled,
        "priority": account.priority,
        "weight": account.weight,
        "last_error": account.last_error,
    }
