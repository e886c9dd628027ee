from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts import audit, services
from accounts.models import Project


def _usd(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"not an amount in USD: {value!r}") from None
    if amount <= 0:
        raise CommandError("a budget must be more than 0")
    return amount.quantize(Decimal("0.01"))


class Command(BaseCommand):
    help = "Create a client API key for a project. The secret is printed alone on the last line, once."

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT_SLUG")
        parser.add_argument("--name", required=True, help="who or what uses the key, e.g. ci-bot")
        parser.add_argument("--expires-days", type=int, default=None, metavar="N", help="default: never expires")
        parser.add_argument("--rpm", type=int, default=None, help="requests per minute (default: the project's only)")
        parser.add_argument("--tpm", type=int, default=None, help="tokens per minute (default: the project's only)")
        parser.add_argument("--max-concurrent", type=int, default=None, help="requests in flight at once")
        parser.add_argument("--monthly-budget", default=None, metavar="USD", help="spending limit per month (UTC)")
        parser.add_argument("--daily-budget", default=None, metavar="USD", help="spending limit per day (UTC)")

    def handle(self, *args, project, name, expires_days, **options):
        found = Project.objects.filter(slug=project).first()
        if found is None:
            slugs = ", ".join(Project.objects.values_list("slug", flat=True)[:20]) or "none yet"
            raise CommandError(f"no project {project!r} (projects: {slugs})")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1")
        for flag in ("rpm", "tpm", "max_concurrent"):
            if options[flag] is not None and options[flag] < 1:
                raise CommandError(f"--{flag.replace('_', '-')} must be at least 1")
        with audit.capture(actor=audit.operator(), source="create_api_key"):
            key, secret = services.key_issue(
                project=found,
                name=name,
                expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
                rpm_limit=options["rpm"],
                tpm_limit=options["tpm"],
                max_concurrent=options["max_concurrent"],
                monthly_budget_usd=_usd(options["monthly_budget"]) if options["monthly_budget"] else None,
                daily_budget_usd=_usd(options["daily_budget"]) if options["daily_budget"] else None,
            )
        expiry = f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "never expires"
        self.stdout.write(f"Created key {key.prefix}… '{key.name}' for project {found.slug} ({expiry}).")
        if not found.active:
            self.stdout.write(f"Note: project {found.slug} is inactive; its keys are refused until it is activated.")
        self.stdout.write("This is the only time the key is shown:")
        self.stdout.write(secret)
