"""`manage.py start_from_env`: the zero-config start. With ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL) and/or
OPENAI_API_KEY (and OPENAI_BASE_URL), and GATEWAY_API_KEY, it creates the providers, the routes Claude Code and
the OpenAI clients ask for, and accepts GATEWAY_API_KEY as a client key (accounts/config_seeds.py). `bin/run`
calls it on every start; with none of the variables set it does nothing. Idempotent: the environment wins.

With GATEWAY_CONFIG set the file is the whole truth about providers and routes: the vendor keys are then only
what the file's `api_key_env` reads, and routes made here (say `claude-*haiku*`) would beat the file's
(`claude-*`) by being more specific. So this command then adds none, only GATEWAY_API_KEY as a client key, and
says so; it also names the routes an earlier environment-only start left that the file does not name."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.config import ConfigError
from accounts.config_seeds import describe, from_environment, left_by_environment
from accounts.self_address import environment_problems
from accounts.services import config_apply


class Command(BaseCommand):
    help = (
        "Providers, routes and a client key from ANTHROPIC_*/OPENAI_*/GATEWAY_API_KEY (nothing if none is set); "
        "with GATEWAY_CONFIG set, only the client key: the file names the providers and routes."
    )

    def handle(self, *args, **options):
        document = from_environment(os.environ)
        if settings.GATEWAY_CONFIG:
            document = self._file_decides(document)
        elif document is None:
            self.stdout.write("No ANTHROPIC_API_KEY or OPENAI_API_KEY set: nothing to set up from the environment.")
        if document is None:
            return
        if loops := environment_problems(document):  # the gateway as its own upstream (accounts/self_address.py)
            problems = "\n".join(f"  {p}" for p in loops)
            raise CommandError(f"the environment was not applied (nothing changed):\n{problems}")
        try:
            report = config_apply(document)
        except ConfigError as e:
            problems = "\n".join(f"  {p}" for p in e.problems)
            raise CommandError(f"the environment could not be applied (nothing changed):\n{problems}") from None
        self.stdout.write("From the environment:")
        for line in describe(document) + report.lines():
            self.stdout.write(line)
        if "GATEWAY_API_KEY" not in os.environ:
            self.stdout.write(self.style.WARNING("GATEWAY_API_KEY is not set: clients need a key from the admin."))

    def _file_decides(self, document: dict | None) -> dict | None:
        """The environment's document cut down to its client key (None if it has none)."""
        self.stdout.write(
            f"GATEWAY_CONFIG is set ({settings.GATEWAY_CONFIG}): its file names the providers and routes, so none "
            "are made from ANTHROPIC_*/OPENAI_* (their keys are read where the file says api_key_env)."
        )
        stale = left_by_environment(settings.GATEWAY_CONFIG)
        if stale:
            self.stdout.write(self.style.WARNING(
                f"Routes an earlier start from the environment made, which the file does not name, still take the "
                f"models they match: {', '.join(stale)}. Delete them in the admin (Model routes) for the file to "
                "decide alone."
            ))  # fmt: skip
        if not document or not document.get("inbound_keys"):
            return None
        return {"inbound_keys": document["inbound_keys"]}
