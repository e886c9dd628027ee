"""Run by the harness in a subprocess with the gateway's environment (never imported by the load generator).

    python -m bench.setup_db configure CONFIG.yaml   -> prints {"key": "gh_..."} as the last stdout line
    python -m bench.setup_db count                    -> prints the number of UsageRecord rows

The harness prefers the operator commands (`manage.py apply_config`, `manage.py create_api_key`) when they exist;
`configure` is the ORM fallback for a tree that does not have them yet.
"""

from __future__ import annotations

import io
import json
import os
import sys


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    import django

    django.setup()


def configure(path: str) -> str:
    import yaml

    from accounts.keys import key_create
    from accounts.models import Project

    _apply_with_orm(yaml.safe_load(open(path)))
    _, secret = key_create(project=Project.objects.get(slug="bench"), name="bench")
    return secret


def _apply_with_orm(cfg: dict) -> None:
    from accounts.models import ModelRoute, Project, Provider, ProviderAccount, RouteTarget
    from usage.models import ModelPrice

    providers = {}
    for p in cfg["providers"]:
        row, _ = Provider.objects.update_or_create(name=p["name"], defaults={"kind": p["kind"], "base_url": p["base_url"]})
        acct, _ = ProviderAccount.objects.get_or_create(provider=row, name="default")
        acct.set_credential(os.environ[p["api_key_env"]])
        acct.save()
        providers[p["name"]] = row
    for m in cfg["models"]:
        route, _ = ModelRoute.objects.update_or_create(alias=m["alias"], defaults={"enabled": True})
        route.targets.all().delete()
        for t in m["targets"]:
            RouteTarget.objects.create(route=route, provider=providers[t["provider"]], remote_model=t["model"])
    for pr in cfg.get("prices", []):
        if not ModelPrice.objects.filter(model=pr["model"]).exists():
            ModelPrice.objects.create(model=pr["model"], input_per_mtok=pr["input_per_mtok"],
                                      output_per_mtok=pr["output_per_mtok"])
    for pj in cfg.get("projects", []):
        Project.objects.update_or_create(slug=pj["slug"], defaults={"name": pj["name"], "active": True})


def count() -> int:
    from usage.models import UsageRecord

    return UsageRecord.objects.count()


def main(argv: list[str]) -> None:
    _django()
    if argv[0] == "configure":
        print(json.dumps({"key": configure(argv[1])}))
    elif argv[0] == "count":
        print(count())
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
