from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import ProviderAccount
from usage import bill_reports, reconcile


class Command(BaseCommand):
    help = (
        "Compare the providers' own bills with the ledger (docs/reconciliation.md): fetch each bill source's usage "
        "and cost reports for the last GATEWAY_RECONCILE_DAYS complete days (what the nightly job does), or import "
        "a CSV bill for one account (--csv FILE --account PROVIDER/ACCOUNT). Lines over tolerance are printed. "
        "Idempotent: a day reconciled again replaces its lines. Needs no Celery."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="the last N days instead of GATEWAY_RECONCILE_DAYS")
        parser.add_argument("--account", action="append", metavar="PROVIDER/ACCOUNT",
                            help="only this provider account (repeatable)")  # fmt: skip
        parser.add_argument("--csv", metavar="FILE", help="import this CSV bill for the one --account")
        parser.add_argument("--include-today", action="store_true", default=None,
                            help="compare today's (still partial) figures too")  # fmt: skip

    def handle(self, *args, days, account, csv, include_today, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be 1 or more")
        if csv:
            outcomes = [self._import(csv, account)]
        else:
            known = {str(a) for a in ProviderAccount.objects.select_related("provider")}
            unknown = sorted(set(account or ()) - known)
            if unknown:
                raise CommandError(f"no such provider account: {', '.join(unknown)} (give PROVIDER/ACCOUNT)")
            outcomes = reconcile.reconcile_all(days, accounts=account, include_today=include_today)
        for outcome in outcomes:
            self._report(outcome)
        self.stdout.write(f"Reconciled: {reconcile.summary(outcomes)['text']}")

    def _import(self, path: str, names: list[str] | None):
        if not names or len(names) != 1:
            raise CommandError("--csv needs exactly one --account PROVIDER/ACCOUNT: the account the bill is for")
        provider, _, name = names[0].partition("/")
        account = ProviderAccount.objects.filter(provider__name=provider, name=name).first()
        if account is None:
            raise CommandError(f"no such provider account: {names[0]} (give PROVIDER/ACCOUNT)")
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"cannot read {path}: {e}") from None
        try:
            return reconcile.csv_import(reconcile.source_for(account), text)
        except bill_reports.CsvProblem as e:
            raise CommandError(f"{path}: {e}") from None

    def _report(self, outcome) -> None:
        name = outcome.source.account
        if outcome.error:
            self.stderr.write(f"{name}: could not read the provider's report: {outcome.error}")
            return
        span = f"{outcome.days[0]}..{outcome.days[-1]}" if outcome.days else "no days"
        self.stdout.write(f"{name}: {span}, {outcome.lines} line(s), {len(outcome.over)} over tolerance")
        for line in outcome.over:
            self.stdout.write(f"  OVER {line.day} {line.model}: provider ${line.bill_cost_usd} vs gateway "
                              f"${line.ledger_cost_usd}; input {line.bill_input_tokens}/{line.ledger_input_tokens}, "
                              f"output {line.bill_output_tokens}/{line.ledger_output_tokens}")  # fmt: skip
