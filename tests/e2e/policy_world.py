"""Helpers for the policy tests: committed config rows (providers, accounts, routes, projects, keys) with
names unique to each test, so the tests never share a limit, a budget or a breaker by accident."""

import time
import uuid
from decimal import Decimal

import httpx

from tests.e2e.conftest import FAKE_KEY


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def provider(fake, *accounts, kind="openai", base_url=None, read_timeout=20.0):
    """accounts: (name, credential, priority, weight) tuples; credential None means the fake's real key."""
    from accounts.models import Provider, ProviderAccount

    url = base_url or (fake.openai_url if kind == "openai" else fake.url)
    row = Provider.objects.create(name=unique("p"), kind=kind, base_url=url, read_timeout=read_timeout, connect_timeout=2)
    for name, credential, priority, weight in accounts or [("main", None, 0, 1)]:
        account = ProviderAccount(provider=row, name=name, priority=priority, weight=weight)
        account.set_credential(FAKE_KEY if credential is None else credential)
        account.save()
    return row


def route(*targets, **fields) -> str:
    """targets: (provider row, remote model, priority). Returns the new alias."""
    from accounts.models import ModelRoute, RouteTarget

    row = ModelRoute.objects.create(alias=unique("pol"), **fields)
    for prov, model, priority in targets:
        RouteTarget.objects.create(route=row, provider=prov, remote_model=model, priority=priority)
    return row.alias


def project(**fields):
    from accounts.models import Project

    slug = unique("proj")
    return Project.objects.create(slug=slug, name=slug, **fields)


def key(proj, **fields) -> str:
    from accounts.keys import key_create

    row, secret = key_create(project=proj, name=unique("key"))
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return secret


def price(model: str, input_usd: str, output_usd: str) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from usage.models import ModelPrice

    ModelPrice.objects.create(  # a plain INSERT: update_or_create's transaction can meet SQLite's writer lock
        model=model,
        effective_from=timezone.localdate() - timedelta(days=1),
        input_per_mtok=Decimal(input_usd),
        output_per_mtok=Decimal(output_usd),
    )


def wait_for_config(url: str, secret: str, alias: str, timeout: float = 5.0) -> None:
    """Until the server's snapshot knows the alias (its cache TTL in tests is 0.5 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {secret}"}).json()
        if any(m["id"] == alias for m in listed.get("data", [])):
            return
        time.sleep(0.1)
    raise AssertionError(f"{alias} never showed up in /v1/models")


def served_route(url: str, fake, *accounts, model: str = "fake-gpt", kind: str = "openai", route_fields=None,
                 **provider_fields):
    """A provider with `accounts` behind a new route, a key on a new project, both known to the server at `url`.
    Returns (alias, secret, provider row)."""
    prov = provider(fake, *accounts, kind=kind, **provider_fields)
    alias = route((prov, model, 0), **(route_fields or {}))
    secret = key(project())
    wait_for_config(url, secret, alias)
    return alias, secret, prov


def openai_chat(url: str, secret: str, alias: str, text: str = "SAY: ok", **extra) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        headers={"authorization": f"Bearer {secret}"},
        json={"model": alias, "messages": [{"role": "user", "content": text}], **extra},
        timeout=30,
    )


def anthropic_chat(url: str, secret: str, alias: str, text: str = "SAY: ok", max_tokens: int = 50) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/messages",
        headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
        json={"model": alias, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )
