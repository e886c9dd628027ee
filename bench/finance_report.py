"""python -m bench.finance_report — server time of the finance report and the admin dashboard over a large ledger.

    python -m bench.finance_report --rows 1000000 --database-url postgres://postgres@127.0.0.1:5432/financebench

Seeds up to --rows synthetic ledger rows (bench.admin_pages' seeding: rows already there are reused), rolls up
every past day that has no rollup yet (manage.py rollup_usage --since all, timed), then opens the report in
process with Django's test client as a superuser: a 90-day range grouped each way, filtered, its CSV, a 30-day
range, and the admin index with its dashboard uncached. Prints a markdown table (median and slowest of --repeat
requests after one unmeasured one, and the page's queries).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import timedelta

from bench import admin_pages


def pages() -> list[tuple[str, str]]:
    from django.utils import timezone

    from usage.models import UsageRecord

    today = timezone.localdate()
    r90 = f"from={today - timedelta(days=89)}&to={today}"
    r30 = f"from={today - timedelta(days=29)}&to={today}"
    busy = UsageRecord.objects.filter(created_at__gte=timezone.now() - timedelta(days=1)).exclude(project=None).first()
    report = "/admin/reports/finance/?"
    return [
        ("report, 90 days by project", f"{report}{r90}&group=project"),
        ("report, 90 days by model", f"{report}{r90}&group=model"),
        ("report, 90 days by key", f"{report}{r90}&group=key"),
        ("report, 90 days by provider", f"{report}{r90}&group=provider"),
        ("report, 90 days, one project, by key", f"{report}{r90}&group=key&project={busy.project_id}"),
        ("report, 90 days, one model", f"{report}{r90}&group=project&model={busy.remote_model}"),
        ("report, 90 days, CSV", f"{report}{r90}&group=model&format=csv"),
        ("report, 30 days by project", f"{report}{r30}&group=project"),
        ("admin index with the dashboard (uncached)", "/admin/"),
    ]


def measure(repeat: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from usage import dashboard

    user, _ = get_user_model().objects.get_or_create(
        username="financebench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    results = []
    for name, path in pages():
        dashboard.cache.delete(dashboard.CACHE_KEY)
        if client.get(path).status_code != 200:
            raise SystemExit(f"{name}: {path} did not answer 200")
        times = []
        for _ in range(repeat):
            dashboard.cache.delete(dashboard.CACHE_KEY)
            started = time.perf_counter()
            client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        dashboard.cache.delete(dashboard.CACHE_KEY)
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        results.append({"page": name, "median": statistics.median(times), "max": max(times),
                        "queries": len(captured.captured_queries)})  # fmt: skip
        print(f"{name}: {statistics.median(times):.0f} ms", file=sys.stderr, flush=True)
    return results


def main(argv=None) -> int:
    args = admin_pages.parse_args(argv)
    admin_pages.setup(args)
    from django.db import connection

    from usage import services

    rows = admin_pages.seed(args)
    started = time.perf_counter()
    rolled = services.rollup_since()
    print(f"rolled up {len(rolled)} days in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    results = measure(args.repeat)
    lines = [f"{rows:,} ledger rows, {connection.vendor}; server time in ms (median of {args.repeat}; slowest):", "",
             "| page | median ms | slowest ms | queries |", "|---|---:|---:|---:|"]  # fmt: skip
    lines += [f"| {r['page']} | {r['median']:.0f} | {r['max']:.0f} | {r['queries']} |" for r in results]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
