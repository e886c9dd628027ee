"""`manage.py oauth_start PROVIDER/ACCOUNT`: begin connecting an Anthropic OAuth account (PKCE, accounts/oauth.py).
Prints the URL to open; sign in there, then give the code it shows to `manage.py oauth_finish`."""

from django.core.management.base import BaseCommand, CommandError

from accounts import oauth
from accounts.models import ProviderAccount


def account_named(label: str) -> ProviderAccount:
    """An account by "provider/account", or by its name alone when that is unique."""
    provider, _, name = label.rpartition("/")
    found = ProviderAccount.objects.select_related("provider").filter(name=name)
    if provider:
        found = found.filter(provider__name=provider)
    matches = list(found[:2])
    if len(matches) != 1:
        raise CommandError(f"{label!r}: {'no such account' if not matches else 'ambiguous; say PROVIDER/ACCOUNT'}")
    if matches[0].provider.kind != "anthropic":
        raise CommandError(f"{label!r}: OAuth accounts belong to an Anthropic provider")
    return matches[0]


class Command(BaseCommand):
    help = "Start connecting an Anthropic OAuth account: prints the authorize URL to open."

    def add_arguments(self, parser):
        parser.add_argument("account", help="PROVIDER/ACCOUNT (the account is created if the provider exists)")

    def handle(self, *args, account, **options):
        row = _account_or_new(account)
        url = oauth.connect_start(row)
        self.stdout.write("Open this URL, sign in, and copy the code the page shows:")
        self.stdout.write(url)
        self.stdout.write(f"Then run: python manage.py oauth_finish {row.provider.name}/{row.name} CODE")


def _account_or_new(label: str) -> ProviderAccount:
    provider, _, name = label.rpartition("/")
    if provider and not ProviderAccount.objects.filter(provider__name=provider, name=name).exists():
        from accounts.models import Provider

        row = Provider.objects.filter(name=provider).first()
        if row is None:
            raise CommandError(f"no provider named {provider!r}")
        ProviderAccount.objects.create(provider=row, name=name, kind="anthropic_oauth", enabled=False)
    return account_named(label)
