"""`manage.py oauth_finish PROVIDER/ACCOUNT CODE`: exchange the code from the authorize page for tokens, store
them encrypted, and enable the account. The tokens are never printed."""

from django.core.management.base import BaseCommand, CommandError

from accounts import oauth

from .oauth_start import account_named


class Command(BaseCommand):
    help = "Finish connecting an Anthropic OAuth account with the code the authorize page showed."

    def add_arguments(self, parser):
        parser.add_argument("account", help="PROVIDER/ACCOUNT, as given to oauth_start")
        parser.add_argument("code", help="the code shown after signing in (code#state)")

    def handle(self, *args, account, code, **options):
        row = account_named(account)
        try:
            expires = oauth.connect_finish(row, code)
        except oauth.OAuthError as e:
            raise CommandError(f"{account}: not connected: {e}") from None
        if not row.enabled:
            row.enabled = True
            row.save(update_fields=["enabled"])
        self.stdout.write(self.style.SUCCESS(f"{account}: connected; the access token expires {expires:%Y-%m-%d %H:%M} "
                                             "UTC and is refreshed automatically."))  # fmt: skip
