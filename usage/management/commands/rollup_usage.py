from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from usage import services


class Command(BaseCommand):
    help = (
        "Roll the usage ledger up into daily rows (what the finance report reads for past days). Without options: "
        "what the nightly job does (re-roll the last GATEWAY_ROLLUP_REROLL_DAYS days, then apply "
        "GATEWAY_LEDGER_RETENTION_DAYS). --since DAY backfills every day from DAY to yesterday; --day rolls one "
        "day. Idempotent: a day rolled again replaces its rows. Run it from cron if you run no Celery beat."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="backfill from this day (YYYY-MM-DD), or 'all' for the oldest ledger row")
        parser.add_argument("--day", help="roll up this one day (YYYY-MM-DD)")
        parser.add_argument("--days", type=int, help="re-roll the last N days instead of GATEWAY_ROLLUP_REROLL_DAYS")
        parser.add_argument("--no-retention", action="store_true", help="do not delete old raw rows this time")

    def handle(self, *args, since, day, days, no_retention, **options):
        try:
            if day:
                rolled = [services.rollup_day(_day(day))]
            elif since:
                rolled = services.rollup_since(None if since == "all" else _day(since))
            else:
                rolled = services.rollup_recent(days)
        except ValueError as e:
            raise CommandError(str(e)) from None
        for marker in rolled:
            self.stdout.write(f"{marker.day}: {marker.rows:,} requests, ${marker.cost_usd}")
        deleted = 0 if (no_retention or day or since) else services.retention_apply()
        self.stdout.write(f"Rolled up {len(rolled)} day(s); retention deleted {deleted:,} raw row(s).")


def _day(text: str) -> date:
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {text!r}") from None
    if value >= timezone.localdate():
        raise CommandError(f"{value} is not over yet: only days before today ({timezone.localdate()}) are rolled up")
    if value < timezone.localdate() - timedelta(days=3660):
        raise CommandError(f"{value}: more than ten years back; is that the date you meant?")
    return value
