"""`python -m bench.seed_ledger N`: append N realistic synthetic rows to the usage ledger (README "The admin at
scale"). Development tooling, run from a checkout: not part of the installed package."""

import os
import sys
import time

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Append N realistic synthetic rows to the usage ledger (tests, benchmarks, demos): traffic from P projects "
        "with K keys each over the last --days days, costs at the prices in force. Makes the projects, keys "
        "(accounts.keys.key_create), providers (disabled) and prices it needs when missing. Never run it on a "
        "production database: the rows are indistinguishable from real ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("rows", type=int, help="how many rows to append")
        parser.add_argument("--days", type=float, default=90, help="spread the rows over the last DAYS days (90)")
        parser.add_argument("--projects", type=int, default=4, help="projects sending traffic (4)")
        parser.add_argument("--keys-per-project", type=int, default=3, help="API keys per project (3)")
        parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same rows (0)")
        parser.add_argument("--batch-size", type=int, default=10_000, help="rows per transaction (10000)")

    def handle(self, *args, rows, days, projects, keys_per_project, seed, batch_size, **options):
        if rows < 0 or days <= 0 or projects < 1 or keys_per_project < 1 or batch_size < 1:
            raise CommandError("rows must be >= 0; --days, --projects, --keys-per-project, --batch-size >= 1")
        from bench import synthetic  # imports the ledger's models: only once the apps are loaded

        started = time.perf_counter()
        written = synthetic.ledger_seed(rows, days=days, projects=projects, keys_per_project=keys_per_project,
                                        seed=seed, batch_size=batch_size)  # fmt: skip
        elapsed = time.perf_counter() - started
        rate = written / elapsed if elapsed else 0
        self.stdout.write(
            f"Seeded {written:,} ledger rows over {days:g} days from {projects} projects x {keys_per_project} keys "
            f"in {elapsed:.1f} s ({rate:,.0f} rows/s)."
        )


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    import django

    django.setup()
    Command().run_from_argv(["python -m", "bench.seed_ledger", *sys.argv[1:]])  # prog: python -m bench.…
