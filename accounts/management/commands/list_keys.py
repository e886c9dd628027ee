"""`manage.py list_keys [--project SLUG] [--status active|revoked|expired] [--json]`: client API keys by their
visible prefix (the secret is never stored, so it can never be shown), with status, dates and limits."""

from django.core.management.base import BaseCommand

from accounts.management.output import write_json, write_table
from accounts.models import ApiKey

COLUMNS = ("project", "prefix", "status", "created", "expires", "last_used", "name")
STATUSES = ("active", "revoked", "expired")


class Command(BaseCommand):
    help = "List client API keys by prefix (never secrets), with filters."

    def add_arguments(self, parser):
        parser.add_argument("--project", action="append", help="only this project's slug (repeatable)")
        parser.add_argument("--status", choices=STATUSES, help="only keys in this state")
        parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")

    def handle(self, *args, **options):
        keys = ApiKey.objects.select_related("project").order_by("project__slug", "-created_at")
        if options["project"]:
            keys = keys.filter(project__slug__in=options["project"])
        rows = [_row(k) for k in keys]
        if options["status"]:
            rows = [r for r in rows if r["status"] == options["status"]]
        if options["json"]:
            write_json(self, {"keys": rows})
        elif rows:
            write_table(self, COLUMNS, rows, flagged=lambda row: row["status"] != "active")
        else:
            self.stdout.write("No keys match.")


def _row(key: ApiKey) -> dict:
    return {
        "project": key.project.slug,
        "prefix": key.prefix + "…",
        "status": key.status,
        "created": key.created_at.strftime("%Y-%m-%d %H:%M"),
        "expires": key.expires_at.strftime("%Y-%m-%d %H:%M") if key.expires_at else None,
        "last_used": key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else None,
        "name": key.name,
    }
