from django.core.management.base import BaseCommand, CommandError

from accounts import audit
from accounts.config import ConfigError
from accounts.services import config_apply_file


def config_apply_print(command: BaseCommand, path: str) -> None:
    """Shared with `bootstrap`: apply, print warnings and the summary, turn a bad file into CommandError."""
    try:
        with audit.capture(actor=audit.operator(), source="apply_config"):
            report = config_apply_file(path)
    except ConfigError as e:
        problems = "\n".join(f"  {p}" for p in e.problems)
        raise CommandError(f"{path} was not applied (nothing changed):\n{problems}") from None
    for warning in report.warnings:
        command.stderr.write(command.style.WARNING(f"warning: {warning}"))
    for line in report.lines():
        command.stdout.write(line)


class Command(BaseCommand):
    help = (
        "Create or update providers, accounts, model routes, prices and projects from a YAML file. Idempotent: "
        "applying the same file again changes nothing. A bad file changes nothing and names the offending field."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="YAML file; ${VAR} in values expands from the environment")

    def handle(self, *args, path, **options):
        config_apply_print(self, path)
