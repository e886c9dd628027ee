from django.core.management.base import BaseCommand, CommandError

from accounts import api_tokens, audit
from accounts.models import ManagementToken


class Command(BaseCommand):
    help = (
        "Create a management API token (/manage/v1/). Prints the secret alone on the last line; only a digest is "
        "kept. Scope read: GET only (usage, costs, status); write: everything."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who or what uses it, e.g. finance-sheet or onboarding-script.")
        parser.add_argument("--scope", choices=api_tokens.SCOPES, default="read")

    def handle(self, *args, name, scope, **options):
        if ManagementToken.objects.filter(name=name).exists():
            raise CommandError(f"a management token named {name!r} exists; revoke it in the admin or pick another name")
        with audit.capture(actor=audit.operator(), source="create_management_token"):
            token, secret = api_tokens.token_create(name=name, scope=scope)
        self.stdout.write(f"Created management token '{token.name}' ({token.scope}), prefix {token.prefix}. "
                          "Send it as Authorization: Bearer to /manage/v1/. It is shown only now:")  # fmt: skip
        self.stdout.write(secret)
