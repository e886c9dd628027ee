from django.core.management.base import BaseCommand

from proxy import responses_store


class Command(BaseCommand):
    help = (
        "Delete stored Responses API responses older than GATEWAY_RESPONSES_RETENTION_DAYS (default 30; 0 keeps "
        "them). The gateway also purges on its own, at most once an hour per process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=None, help="override the retention for this run")

    def handle(self, *args, days, **options):
        deleted = responses_store.purge(days)
        self.stdout.write(f"Deleted {deleted} stored responses.")
