"""Which upstream serves a model alias: an in-memory snapshot of routes, providers, accounts and prices.

The snapshot is rebuilt from the database at most every GATEWAY_CACHE_TTL seconds (at once when the admin or a
command changes the config, in every process when Redis is configured: see proxy/signals.py and proxy/auth.py),
so a warm request makes no query. Which target and account serve a request is proxy/selection.py's job.

Alias matching: an exact alias wins; otherwise the longest matching glob pattern (`claude-*` beats `*`), ties
broken alphabetically. A target whose remote model is `*` passes the client's model name through.
`anthropic/<alias>` names the alias too: Claude Code's model discovery shows only ids starting with `claude` or
`anthropic`, so `claude_models` lists other aliases that way (README "Use with Claude Code").
"""

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import date
from fnmatch import fnmatchcase

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from accounts.keys import AuthenticatedKey
from accounts.models import ModelRoute, ProviderAccount
from accounts.models import Provider as ProviderRow
from accounts.presets import Capabilities, preset_for
from usage.models import ModelPrice
from usage.pricing import Rates, rates

from .errors import NotFound
from .formats.envelope import anthropic_model_name


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    credential: str
    weight: int
    priority: int
    kind: str = "api_key"  # "anthropic_oauth": the credential is an access token (accounts/oauth.py)
    expires_at: float = 0.0  # OAuth: when the access token expires (unix seconds)


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    kind: str
    base_url: str
    connect_timeout: float
    read_timeout: float
    extra_headers: tuple[tuple[str, str], ...]
    accounts: tuple[Account, ...]
    capabilities: Capabilities = Capabilities()  # resolved once per snapshot, never per request
    preset: str = "openai_compatible"


@dataclass(frozen=True, slots=True)
class Target:
    provider: Provider
    remote_model: str
    priority: int
    weight: int


@dataclass(frozen=True, slots=True)
class Route:
    alias: str
    display_name: str
    default_max_tokens: int | None
    max_output_tokens: int | None
    targets: tuple[Target, ...]
    created_at: int  # unix seconds
    strategy: str = "priority"  # see proxy/selection.py
    retry: tuple = (None, None, None, None)  # max attempts, base ms, cap ms, deadline s; None = the setting
    account_ids: tuple[int, ...] = ()  # every account of every target (for breaker health)
    cache_ttl: int | None = None  # the response cache's TTL for this route; None: the project's (proxy/optimize)
    on_all_open: str = ""  # "panic" | "fail_fast" | "" (GATEWAY_BREAKER_ON_ALL_OPEN): see proxy/selection.py


@dataclass(slots=True)
class Snapshot:
    exact: dict[str, Route]
    patterns: list[Route]  # longest first
    prices: dict[str, list[tuple[date, Rates]]]  # (effective from, rates), newest first
    loaded_at: float = field(default_factory=time.monotonic)

    def resolve(self, key: AuthenticatedKey, model: str) -> Route:
        if not isinstance(model, str) or not model:
            raise NotFound("model: a model name is required", param="model", code="model_not_found")
        if model.startswith(LISTED_PREFIX) and model not in self.exact:
            model = model[len(LISTED_PREFIX) :]  # an alias as Claude Code's model discovery lists it (below)
        if not _key_may(key, model):
            raise NotFound(f"model: {model} is not available to this key", param="model", code="model_not_found")
        route = self.exact.get(model)
        if route is None:
            route = next((r for r in self.patterns if fnmatchcase(model, r.alias)), None)
        if route is None or not route.targets:
            raise NotFound(f"model: {model} not found", param="model", code="model_not_found")
        return route

    def visible_routes(self, key: AuthenticatedKey) -> list[Route]:
        """Exact aliases the key may use (patterns are not model names, so they are not listed)."""
        return [r for a, r in sorted(self.exact.items()) if _key_may(key, a)]

    def claude_models(self, key: AuthenticatedKey) -> list[Route]:
        """What Claude Code can pick (its model discovery lists only ids starting with `claude` or `anthropic`):
        every alias the key may use, those named otherwise as `anthropic/<alias>` (resolve takes the prefix off),
        then the Claude models of the price table that a pattern route serves (`claude-*`), each once."""
        listed = [r if r.alias.startswith(CLAUDE_IDS) else replace(r, alias=LISTED_PREFIX + r.alias)
                  for r in self.visible_routes(key)]  # fmt: skip
        seen = {r.alias for r in listed}
        for name in sorted(self.prices):
            if not name.startswith(CLAUDE_IDS) or name in seen or not _key_may(key, name):
                continue
            route = next((r for r in self.patterns if fnmatchcase(name, r.alias)), None)  # as resolve() picks
            if route is not None and route.targets:
                listed.append(replace(route, alias=name, display_name=display_name(name)))
        return listed

    def price(self, remote_model: str, on: date) -> Rates | None:
        """The rates in force for a remote model. A Bedrock or Vertex model id with no row of its own is priced as
        the Anthropic model it names (`us.anthropic.claude-sonnet-4-5-20250929-v1:0` as `claude-sonnet-4-5-20250929`,
        proxy/formats/envelope.py): the clouds' global list prices are Anthropic's, so such a request is never
        recorded at $0; a row for the exact id (a regional endpoint's surcharge, say) wins."""
        rows = self.prices.get(remote_model)
        if rows is None:
            rows = self.prices.get(anthropic_model_name(remote_model), ())
        return next((rates for since, rates in rows if since <= on), None)


CLAUDE_IDS = ("claude", "anthropic")
LISTED_PREFIX = "anthropic/"


def display_name(model: str) -> str:
    """`claude-sonnet-4-5-20250929` -> `Claude Sonnet 4.5`: words capitalised, version digits joined by dots, a
    date suffix left out."""
    words, out = [w for w in model.split("-") if not (w.isdigit() and len(w) == 8)], []
    for word in words:
        if word.isdigit() and out and out[-1][-1:].isdigit():
            out[-1] += "." + word
        else:
            out.append(word.capitalize() if not word.isdigit() else word)
    return " ".join(out)


def _key_may(key: AuthenticatedKey, model: str) -> bool:
    return _allowed(key.project_models, model) and _allowed(key.key_models, model)


def _allowed(patterns: tuple[str, ...], model: str) -> bool:
    return not patterns or any(p == model or fnmatchcase(model, p) for p in patterns)


def provider_view(row, accounts=()) -> Provider:
    """The snapshot's immutable view of a Provider row."""
    return Provider(
        name=row.name,
        kind=row.kind or preset_for(row.preset, "").kind,  # a row saved without clean(): the preset's kind
        base_url=(row.base_url or preset_for(row.preset, row.kind).base_url).rstrip("/"),
        connect_timeout=row.connect_timeout,
        read_timeout=row.read_timeout,
        extra_headers=tuple((str(k), str(v)) for k, v in (row.extra_headers or {}).items()),
        accounts=tuple(accounts),
        capabilities=row.resolved_capabilities(),
        preset=row.preset_name,
    )


def _build() -> Snapshot:
    close_old_connections()  # runs in an executor thread that outlives requests: drop a stale connection
    now = timezone.now()
    accounts: dict[int, list[Account]] = {}
    for row in ProviderAccount.objects.filter(enabled=True):
        if row.cooldown_until and row.cooldown_until > now:
            continue
        accounts.setdefault(row.provider_id, []).append(
            Account(id=row.id, name=row.name, credential=row.credential, weight=row.weight, priority=row.priority,
                    kind=row.kind, expires_at=row.oauth_expires_at.timestamp() if row.oauth_expires_at else 0.0)
        )
    providers = {p.id: provider_view(p, accounts.get(p.id, ())) for p in ProviderRow.objects.filter(enabled=True)}
    account_labels.update({a.id: (p.name, a.name) for p in providers.values() for a in p.accounts})
    exact: dict[str, Route] = {}
    patterns: list[Route] = []
    for row in ModelRoute.objects.filter(enabled=True).prefetch_related("targets"):
        targets = tuple(
            Target(provider=providers[t.provider_id], remote_model=t.remote_model, priority=t.priority, weight=t.weight)
            for t in row.targets.all()
            if t.provider_id in providers and providers[t.provider_id].accounts
        )
        route = Route(
            alias=row.alias,
            display_name=row.display_name or row.alias,
            default_max_tokens=row.default_max_tokens,
            max_output_tokens=row.max_output_tokens,
            targets=targets,
            created_at=int(row.created_at.timestamp()),
            strategy=row.strategy,
            retry=(row.retry_max_attempts, row.retry_base_ms, row.retry_cap_ms, row.retry_deadline_seconds),
            account_ids=tuple(dict.fromkeys(a.id for t in targets for a in t.provider.accounts)),
            cache_ttl=row.response_cache_ttl,
            on_all_open=row.on_all_open,
        )
        if row.is_pattern:
            patterns.append(route)
        else:
            exact[row.alias] = route
    patterns.sort(key=lambda r: (-len(r.alias), r.alias))
    prices: dict[str, list[tuple[date, Rates]]] = {}
    for p in ModelPrice.objects.order_by("model", "-effective_from"):
        prices.setdefault(p.model, []).append((p.effective_from, rates(p)))
    return Snapshot(exact=exact, patterns=patterns, prices=prices)


account_labels: dict[int, tuple[str, str]] = {}  # account id -> (provider name, account name), for metrics
_current: Snapshot | None = None
_refreshing: asyncio.Task | None = None


def cache_clear() -> None:
    global _current
    _current = None


async def snapshot() -> Snapshot:
    """The current snapshot. When it is stale one request rebuilds it while the others keep using the old one."""
    global _current, _refreshing
    current = _current
    if current is not None and time.monotonic() - current.loaded_at < settings.GATEWAY_CACHE_TTL:
        return current
    if current is not None and _refreshing is not None and not _refreshing.done():
        return current
    build = asyncio.ensure_future(sync_to_async(_build, thread_sensitive=False)())
    _refreshing = build
    _current = await build
    return _current
