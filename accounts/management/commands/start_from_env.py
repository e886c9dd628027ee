"""`manage.py start_from_env`: the zero-config start. With ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL) and/or
OPENAI_API_KEY (and OPENAI_BASE_URL), and GATEWAY_API_KEY, it creates the providers, the routes Claude Code and
the OpenAI clients ask for, and accepts GATEWAY_API_KEY as a client key (accounts/config_seeds.py). `bin/run`
calls it on every start; with none of the variables set it does nothing. Idempotent: the environment wins.

With GATEWAY_CONFIG set the file is the whole truth about providers and routes: the vendor keys are then only
what the file's `api_key_env` reads, and routes made here (say `claude-*haiku*`) would beat the file's
(`claude-*`) by being more specific. So this command then adds none, only GATEWAY_API_KEY as a client key, and
says so; it also names the routes an earlier environment-only start left that the file does not name.

The variables of the gateways Gatehouse replaces (GATEWAY_TOKEN, MODEL_MAP, the Coding Gateway's) are read too,
through their tables in accounts/seeds: one line per variable used, and one warning naming every variable set
that has no counterpart (docs/coming-from.md)."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.config import ConfigError
from accounts.config_seeds import describe, left_by_environment
from accounts.seeds import environment_document, with_admin_values
from accounts.self_address import environment_problems
from accounts.services import config_apply


class Command(BaseCommand):
    help = (
        "Providers, routes and a client key from ANTHROPIC_*/OPENAI_*/GATEWAY_API_KEY (nothing if none is set); "
        "with GATEWAY_CONFIG set, only the client key: the file names the providers and routes."
    )

    def handle(self, *args, **options):
        document, reading = environment_document(os.environ)
        self._report_variables(reading)
        if reading.problems:
            problems = "\n".join(f"  {p}" for p in reading.problems)
            raise CommandError(f"the environment was not applied (nothing changed):\n{problems}")
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
            report = config_apply(with_admin_values(document))
        except ConfigError as e:
            problems = "\n".join(f"  {p}" for p in e.problems)
            raise CommandError(f"the environment could not be applied (nothing changed):\n{problems}") from None
        self.stdout.write("From the environment:")
        for line in describe(document) + report.lines():
            self.stdout.write(line)
        if not {"GATEWAY_API_KEY", "GATEWAY_TOKEN"} & set(os.environ):
            self.stdout.write(self.style.WARNING("GATEWAY_API_KEY is not set: clients need a key from the admin."))

    def _report_variables(self, reading) -> None:
        """One line per seed variable used (values of secrets never shown), then the one warning."""
        if reading.used:
            self.stdout.write("Variables of the gateways Gatehouse replaces, as read here:")
            for line in reading.used:
                self.stdout.write(line)
        if reading.unmapped:
            self.stderr.write(self.style.WARNING(
                f"Set but without a counterpart in Gatehouse (nothing is done with them): "
                f"{', '.join(reading.unmapped)}. See docs/coming-from.md."
            ))  # fmt: skip

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
