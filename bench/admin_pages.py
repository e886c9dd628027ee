"""python -m bench.admin_pages — server time of every admin page a team uses, over a large ledger.

    python -m bench.admin_pages --rows 1000000                       scratch SQLite file (see --database-url)
    python -m bench.admin_pages --rows 5000000 --database-url postgres://postgres@127.0.0.1:5432/adminbench

Seeds the database up to --rows ledger rows with bench.synthetic (the rows already there are kept and counted,
so a second run reuses them), then opens each page in-process with Django's test client as a superuser and
prints a markdown table: the median and the slowest of --repeat requests (after one unmeasured request), and
how many queries the page ran. Server time only: no network, no browser. Without --database-url (and without
$DATABASE_URL) it uses /tmp/gatehouse-adminbench/adminbench.sqlite3, never the project's data directory.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

SCRATCH = Path("/tmp/gatehouse-adminbench")
LOCK = Path("/tmp/gatehouse-bench.lock")  # shared with python -m bench: one benchmark at a time


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.admin_pages", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--rows", type=int, default=1_000_000, help="ledger rows to have (seeds the missing ones)")
    ap.add_argument("--database-url", default=None, help="default: $DATABASE_URL, else a scratch SQLite file")
    ap.add_argument("--days", type=float, default=90, help="seeded rows spread over this many days (90)")
    ap.add_argument("--projects", type=int, default=8)
    ap.add_argument("--keys-per-project", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5, help="measured requests per page (5)")
    ap.add_argument("--out", default=None, help="also write the table to this file")
    ap.add_argument("--wait-lock", type=float, default=1800, metavar="S",
                    help="wait up to S seconds for another benchmark to finish before timing (1800)")
    return ap.parse_args(argv)


def setup(args) -> None:
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        SCRATCH.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{SCRATCH / 'adminbench.sqlite3'}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("GATEWAY_DATA_DIR", str(SCRATCH))  # generated secrets stay out of ./data
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host name, in-memory e-mail
    call_command("migrate", verbosity=0)


def seed(args) -> int:
    from django.db import connection

    from bench import synthetic
    from usage.models import UsageRecord

    have = UsageRecord.objects.count()
    missing = args.rows - have
    if missing > 0:
        print(f"seeding {missing:,} ledger rows ({have:,} there already)…", file=sys.stderr, flush=True)
        started = time.perf_counter()
        synthetic.ledger_seed(missing, days=args.days, projects=args.projects, keys_per_project=args.keys_per_project,
                              seed=have, batch_size=20_000)  # fmt: skip
        elapsed = time.perf_counter() - started
        print(f"seeded in {elapsed:.0f} s ({missing / elapsed:,.0f} rows/s)", file=sys.stderr, flush=True)
        if connection.vendor == "postgresql":  # what autovacuum would have done by the time anyone looks
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM ANALYZE {UsageRecord._meta.db_table}")
    else:
        synthetic.world_ensure(projects=args.projects, keys_per_project=args.keys_per_project)
    return max(have, args.rows)


def busiest(args) -> tuple[int, int]:
    """The project and the key with the most rows (bench.synthetic weighs keys 1, 1/2, 1/3… in World order)."""
    from bench import synthetic

    world = synthetic.world_ensure(projects=args.projects, keys_per_project=args.keys_per_project)
    weights: dict[int, float] = {}
    for rank, (project_id, _key_id) in enumerate(world.keys):
        weights[project_id] = weights.get(project_id, 0) + 1 / (rank + 1)
    return max(weights, key=weights.get), world.keys[0][1]


def pages(args) -> list[tuple[str, str]]:
    from django.contrib import admin
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import ApiKey, ModelRoute, Project, Provider, ProviderAccount
    from usage.models import ModelPrice, UsageRecord

    project_id, key_id = busiest(args)

    newest = UsageRecord.objects.order_by("-created_at").first()
    record = UsageRecord.objects.filter(outcome="ok", created_at__lte=newest.created_at).order_by("-created_at")
    record = record.select_related("project", "api_key").first()
    local = timezone.localtime(record.created_at)
    today = timezone.localdate()
    columns = list(admin.site._registry[UsageRecord].list_display)
    ledger = reverse("admin:usage_usagerecord_changelist")

    def change(obj):
        meta = obj._meta
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])

    def changelist(model):
        meta = model._meta
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")

    out = [
        ("admin index", reverse("admin:index")),
        ("ledger: list", ledger),
        ("ledger: page 2", f"{ledger}?p=2"),
        ("ledger: page 100 (the last counted)", f"{ledger}?p=100"),
        ("ledger: oldest first", f"{ledger}?o={columns.index('created_at')}"),
        ("ledger: outcome ok", f"{ledger}?outcome__exact=ok"),
        ("ledger: outcome upstream error", f"{ledger}?outcome__exact=upstream_error"),
        ("ledger: outcome interrupted (rarest)", f"{ledger}?outcome__exact=interrupted"),
        ("ledger: model alias", f"{ledger}?alias={record.alias}"),
        ("ledger: provider", f"{ledger}?provider={record.provider}"),
        ("ledger: ingress API", f"{ledger}?ingress_api=openai"),
        ("ledger: not streamed", f"{ledger}?stream__exact=0"),
        ("ledger: project", f"{ledger}?project__id__exact={record.project_id}"),
        ("ledger: API key", f"{ledger}?api_key__id__exact={record.api_key_id}"),
        ("ledger: 4 filters + this month", f"{ledger}?outcome__exact=ok&stream__exact=1&ingress_api=anthropic"
                                           f"&provider=anthropic-main&created=month"),
        ("ledger: today", f"{ledger}?created=today"),
        ("ledger: past 7 days", f"{ledger}?created=7d"),
        ("ledger: this month", f"{ledger}?created=month"),
        ("ledger: last month", f"{ledger}?created=last_month"),
        ("ledger: from–to (10 days)", f"{ledger}?created_from={today - timedelta(days=20)}"
                                      f"&created_to={today - timedelta(days=11)}"),
        ("ledger: past 30 days + upstream errors", f"{ledger}?created=30d&outcome__exact=upstream_error"),
        ("ledger: date nav, year", f"{ledger}?created_at__year={local.year}"),
        ("ledger: date nav, month", f"{ledger}?created_at__year={local.year}&created_at__month={local.month}"),
        ("ledger: date nav, day", f"{ledger}?created_at__year={local.year}&created_at__month={local.month}"
                                  f"&created_at__day={local.day}"),
        ("ledger: search request id", f"{ledger}?q={record.request_id}"),
        ("ledger: search alias (part)", f"{ledger}?q={record.alias[:3]}"),
        ("ledger: search, several aliases", f"{ledger}?q=s"),
        ("ledger: search, no match", f"{ledger}?q=req_nothing"),
        ("ledger: today by cost", f"{ledger}?created=today&o=-{columns.index('cost_usd')}"),
        ("ledger: a day by latency", f"{ledger}?created_from={today - timedelta(days=1)}"
                                     f"&created_to={today - timedelta(days=1)}&o=-{columns.index('latency_ms')}"),
        ("ledger: record", change(record)),
        ("projects: list", changelist(Project)),
        ("projects: busiest project", change(Project.objects.get(pk=project_id))),
        ("API keys: list", changelist(ApiKey)),
        ("API keys: busiest key", change(ApiKey.objects.get(pk=key_id))),
        ("providers: list", changelist(Provider)),
        ("providers: provider", change(Provider.objects.get(name=record.provider))),
        ("accounts: list", changelist(ProviderAccount)),
        ("accounts: account", change(ProviderAccount.objects.get(provider__name=record.provider, name=record.account))),
        ("routes: list", changelist(ModelRoute)),
        ("prices: list", changelist(ModelPrice)),
    ]  # fmt: skip
    return out


def measure(args) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(
        username="adminbench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    results = []
    for name, path in pages(args):
        response = client.get(path)  # unmeasured: connection, caches, templates
        if response.status_code != 200:
            raise SystemExit(f"{name}: {path} answered {response.status_code} {response.get('Location', '')}")
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        results.append({"page": name, "path": path, "median": statistics.median(times), "max": max(times),
                        "queries": len(captured.captured_queries)})  # fmt: skip
        print(f"{name}: {statistics.median(times):.0f} ms", file=sys.stderr, flush=True)
    return results


def spend_queries(args) -> list[dict]:
    """The sums behind budgets and the spend shown on project and key pages: this month, busiest project/key."""
    from django.db.models import Sum
    from django.utils import timezone

    from usage.models import UsageRecord

    project_id, key_id = busiest(args)
    month = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out = []
    for name, rows in (("spend this month, busiest project", UsageRecord.objects.filter(project_id=project_id)),
                       ("spend this month, busiest key", UsageRecord.objects.filter(api_key_id=key_id))):
        query = rows.filter(created_at__gte=month)
        query.aggregate(total=Sum("cost_usd"))
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            query.aggregate(total=Sum("cost_usd"))
            times.append((time.perf_counter() - started) * 1000)
        out.append({"page": f"query: {name} ({query.count():,} rows)", "median": statistics.median(times),
                    "max": max(times), "queries": 1})  # fmt: skip
    return out


def table(results: list[dict], rows: int, vendor: str) -> str:
    lines = [
        f"{rows:,} ledger rows, {vendor}; server time in ms (median of the measured requests; slowest):",
        "",
        "| page | median ms | slowest ms | queries |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['page']} | {r['median']:.0f} | {r['max']:.0f} | {r['queries']} |" for r in results]
    worst = max((r for r in results if not r["page"].startswith("query:")), key=lambda r: r["median"])
    lines += ["", f"Slowest page: {worst['page']} ({worst['median']:.0f} ms median)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup(args)
    from django.db import connection

    rows = seed(args)
    with open(LOCK, "a+") as lock:
        deadline = time.monotonic() + args.wait_lock
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"another benchmark holds {LOCK}") from None
                time.sleep(5)
        results = measure(args) + spend_queries(args)
    text = table(results, rows, connection.vendor)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
