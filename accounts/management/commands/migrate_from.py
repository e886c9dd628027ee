"""`manage.py migrate_from SEED [--env-file F | --config F] [--dry-run]`: what Gatehouse makes of another gateway's
settings (accounts/seeds, docs/coming-from.md), printed before it is done. SEED is one of accounts.seeds.SEEDS:
the environment ones read --env-file (else this process's environment), the file ones read --config (else where
that gateway looks). --dry-run applies everything inside a transaction it rolls back: the same checks and counts,
nothing changed."""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import audit
from accounts.config import ConfigError, config_read
from accounts.config_seeds import describe, translate_noting
from accounts.seeds import SEEDS, environment_document, settings_from, with_admin_values
from accounts.seeds.common import read_env_file
from accounts.services import config_apply

DEFAULT_CONFIG = {"claude-proxy": (os.environ.get("CONFIG_PATH") or "config.json"),
                  "llm-gateway": "~/.llm-gateway/config.yaml"}  # fmt: skip


class DryRun(Exception):
    pass


class Command(BaseCommand):
    help = "Show, then create, what another gateway's environment or config file becomes in Gatehouse."

    def add_arguments(self, parser):
        parser.add_argument("seed", choices=sorted(SEEDS))
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--env-file", help="KEY=value lines (environment seeds); default: this environment")
        source.add_argument("--config", help="the gateway's config file (claude-proxy, llm-gateway)")
        parser.add_argument("--dry-run", action="store_true", help="print what would be done; change nothing")

    def handle(self, *args, seed, env_file, config, dry_run, **options):
        module = SEEDS[seed]
        if hasattr(module, "VARIABLES"):
            if config:
                raise CommandError(f"{seed} is configured by its environment: give --env-file, not --config")
            environ = read_env_file(env_file) if env_file else dict(os.environ)
            data, lines = self._from_environment(environ)
        else:
            if env_file:
                raise CommandError(f"{seed} is configured by a file: give --config, not --env-file")
            environ = dict(os.environ)
            data, lines = self._from_file(module, os.path.expanduser(config or DEFAULT_CONFIG[seed]))
        self.stdout.write(f"From {seed}, Gatehouse will create or set:")
        for line in lines:
            self.stdout.write(line)
        try:
            report = self._apply(data, environ, dry_run)
        except ConfigError as e:
            raise CommandError("nothing was changed:\n" + "\n".join(f"  {p}" for p in e.problems)) from None
        for warning in report.warnings:
            self.stderr.write(self.style.WARNING(f"warning: {warning}"))
        lines = report.lines()
        if dry_run:
            lines[-1] = lines[-1].replace("Config applied", "Dry run, nothing changed; it would be")
        for line in lines:
            self.stdout.write(line)

    def _from_environment(self, environ):
        document, reading = environment_document(environ)
        if reading.problems:
            raise CommandError("nothing was changed:\n" + "\n".join(f"  {p}" for p in reading.problems))
        if document is None:
            raise CommandError("no ANTHROPIC_API_KEY or OPENAI_API_KEY: there is no upstream to set up")
        lines = describe(document)
        lines += [f"  setting {name}={'(secret)' if 'KEY' in name else value}: keep the seed's variable in the "
                  f"server's environment (read at start) or set {name}"
                  for name, value in settings_from(environ).items()]  # fmt: skip
        lines += ["Variables read:", *reading.used]
        if reading.unmapped:
            lines.append(f"Without a counterpart (nothing is done with them): {', '.join(reading.unmapped)}")
        return with_admin_values(document), lines

    def _from_file(self, module, path: str):
        if not Path(path).is_file():
            raise CommandError(f"{path}: no such file (give --config)")
        try:
            data = config_read(path)
        except ConfigError as e:
            raise CommandError("\n".join(e.problems)) from None
        if not module.recognise(data):
            raise CommandError(f"{path} is not a {module.NAME} configuration (docs/coming-from.md)")
        document, _notes = translate_noting(data)
        return data, describe(document)

    def _apply(self, data, environ, dry_run: bool):
        if not dry_run:
            with audit.capture(actor=audit.operator(), source="migrate_from"):
                return config_apply(data, environ=environ)
        try:
            with transaction.atomic():
                report = config_apply(data, environ=environ)
                raise DryRun
        except DryRun:
            return report
