"""`manage.py start_from_env`: the zero-config start. With ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL) and/or
OPENAI_API_KEY (and OPENAI_BASE_URL), and GATEWAY_API_KEY, it creates the providers, the routes Claude Code and
the OpenAI clients ask for, and accepts GATEWAY_API_KEY as a client key (accounts/config_seeds.py). `bin/run`
calls it on every start; with none of the variables set it does nothing. Idempotent: the environment wins."""

import os

from django.core.management.base import BaseCommand, CommandError

from accounts.config import ConfigError
from accounts.config_seeds import from_environment
from accounts.self_address import environment_problems
from accounts.services import config_apply


class Command(BaseCommand):
    help = "Providers, routes and a client key from ANTHROPIC_*/OPENAI_*/GATEWAY_API_KEY (nothing if none is set)."

    def handle(self, *args, **options):
        document = from_environment(os.environ)
        if document is None:
            self.stdout.write("No ANTHROPIC_API_KEY or OPENAI_API_KEY set: nothing to set up from the environment.")
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
        for line in report.lines():
            self.stdout.write(line)
        if "GATEWAY_API_KEY" not in os.environ:
            self.stdout.write(self.style.WARNING("GATEWAY_API_KEY is not set: clients need a key from the admin."))
