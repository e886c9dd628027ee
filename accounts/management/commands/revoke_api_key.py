from django.core.management.base import BaseCommand, CommandError

from accounts import audit, keys


class Command(BaseCommand):
    help = "Revoke a client API key, given the full key or its visible prefix (gh_ + 8 characters)."

    def add_arguments(self, parser):
        parser.add_argument("key", metavar="KEY_OR_PREFIX")

    def handle(self, *args, key, **options):
        found = keys.key_find(key.strip())
        if found is None:
            raise CommandError("no such key (give the full key or its prefix, e.g. gh_AbCd1234)")
        if found.revoked_at:
            self.stdout.write(f"Key {found.prefix}… '{found.name}' was already revoked on {found.revoked_at:%Y-%m-%d}.")
            return
        with audit.capture(actor=audit.operator(), source="revoke_api_key"):
            keys.key_revoke(found)
        self.stdout.write(f"Revoked key {found.prefix}… '{found.name}' of project {found.project.slug}.")
