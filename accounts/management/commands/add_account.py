"""`manage.py add_account PROVIDER/ACCOUNT --key K [--weight N] [--priority N]`: an API-key account in a provider's
pool (LLM Gateway's `add-api-key`, accounts/seeds/llm_gateway.py). A provider that does not exist yet is made
from the preset of the same name (anthropic, openai, ...). The same key again changes nothing."""

from django.core.management.base import BaseCommand, CommandError

from accounts import audit
from accounts.config import ConfigError
from accounts.models import Provider
from accounts.presets import PRESETS
from accounts.services import config_apply


class Command(BaseCommand):
    help = "Add an API-key account to a provider (made from its preset if new). The key is stored encrypted."

    def add_arguments(self, parser):
        parser.add_argument("account", help="PROVIDER/ACCOUNT, e.g. anthropic/production")
        parser.add_argument("--key", required=True, help="the upstream API key")
        parser.add_argument("--weight", type=int, default=1)
        parser.add_argument("--priority", type=int, default=0)

    def handle(self, *args, account, key, weight, priority, **options):
        provider_name, _, name = account.rpartition("/")
        if not provider_name or not name:
            raise CommandError(f"{account!r}: say PROVIDER/ACCOUNT")
        row = Provider.objects.filter(name=provider_name).first()
        if row is None and provider_name not in PRESETS:
            raise CommandError(f"no provider named {provider_name!r} (and no preset of that name to make one)")
        provider = _as_it_is(row) if row else {"name": provider_name, "preset": provider_name}
        provider["accounts"] = [{"name": name, "api_key": key, "weight": weight, "priority": priority}]
        try:
            with audit.capture(actor=audit.operator(), source="add_account"):
                report = config_apply({"providers": [provider]}, environ={})
        except ConfigError as e:
            raise CommandError("\n".join(e.problems)) from None
        self.stdout.write(f"Account {provider_name}/{name}: " + report.lines()[-1])


def _as_it_is(row: Provider) -> dict:
    """The provider's current values, so that applying it with one more account changes nothing else."""
    return {"name": row.name, "kind": row.kind, "base_url": row.base_url, "preset": row.preset,
            "capabilities": row.capabilities, "connect_timeout": row.connect_timeout, "read_timeout": row.read_timeout,
            "extra_headers": row.extra_headers, "enabled": row.enabled}  # fmt: skip
