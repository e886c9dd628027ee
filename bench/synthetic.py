"""Synthetic ledger traffic for tests, benchmarks and demos (`python -m bench.seed_ledger`). Development tooling:
not part of the installed package.

    world_ensure   the projects, keys, providers, accounts and prices the rows point at (made if missing)
    ledger_rows    N ledger rows as tuples in COLUMNS order, oldest first, spread over the last `days` days
    ledger_insert  writes rows fast: COPY on PostgreSQL, one executemany per batch elsewhere
    ledger_seed    the three above in one call; returns how many rows it wrote

The rows look like a small team's traffic: weighted keys (a few busy ones), more requests in working hours on
weekdays, Claude Code on the Anthropic ingress and SDKs/editors on the OpenAI one, mostly streamed, a few
percent errors of every outcome with the status, error and attempts the gateway writes for them, and token
counts, latencies and costs drawn per model. Costs are what usage.pricing charges at the ModelPrice in force
on the row's day (UTC), so sums over the ledger agree with the price table. The same seed gives the same rows
(apart from the database ids of projects and keys).
"""

from __future__ import annotations

import bisect
import math
import random
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connections, transaction
from django.utils import timezone

from usage import pricing
from usage.models import ModelPrice, UsageRecord

COLUMNS = (
    "created_at", "request_id", "project_id", "api_key_id", "alias", "provider", "account", "remote_model",
    "ingress_api", "upstream_api", "stream", "http_status", "outcome", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "cost_usd", "latency_ms", "ttft_ms", "attempts", "error_type",
    "error_message", "user_agent", "requested_model", "batch_id", "route_rule", "reductions", "tokens_saved",
    "saved_usd", "cache_write_1h_tokens", "session_id",
)  # fmt: skip
_ZERO = Decimal(0)
_COST = COLUMNS.index("cost_usd")

# name: (kind, base_url, accounts). Made disabled when missing, so a seeded database never routes to them.
PROVIDERS = {
    "anthropic-main": ("anthropic", "https://api.anthropic.com", ("default", "backup")),
    "openai-main": ("openai", "https://api.openai.com/v1", ("default",)),
    "deepseek": ("openai", "https://api.deepseek.com/v1", ("default",)),
    "local-vllm": ("openai", "http://10.0.0.5:8000/v1", ("gpu-a", "gpu-b")),
}
# remote model: USD per million tokens (input, output, cache read, cache write) when no ModelPrice exists yet.
PRICES = {
    "claude-sonnet-4-5": ("3", "15", "0.3", "3.75"),
    "claude-opus-4-1": ("15", "75", "1.5", "18.75"),
    "claude-haiku-4-5": ("1", "5", "0.1", "1.25"),
    "gpt-4.1": ("2", "8", "0.5", "0"),
    "gpt-4.1-mini": ("0.4", "1.6", "0.1", "0"),
    "deepseek-chat": ("0.27", "1.1", "0.07", "0"),
    "qwen3-coder-30b": ("0", "0", "0", "0"),
}
PRICES_FROM = date(2024, 1, 1)


@dataclass(frozen=True, slots=True)
class Upstream:
    alias: str
    provider: str
    remote_model: str
    weight: int
    input_median: int  # uncached input tokens
    output_median: int
    ms_per_token: float


UPSTREAMS = (
    Upstream("sonnet", "anthropic-main", "claude-sonnet-4-5", 40, 2500, 450, 12),
    Upstream("claude-sonnet-4-5-20250929", "anthropic-main", "claude-sonnet-4-5", 12, 3000, 500, 12),
    Upstream("fast", "anthropic-main", "claude-haiku-4-5", 15, 1200, 150, 5),
    Upstream("opus", "anthropic-main", "claude-opus-4-1", 5, 4000, 700, 25),
    Upstream("gpt", "openai-main", "gpt-4.1-mini", 12, 1500, 300, 7),
    Upstream("gpt-4.1", "openai-main", "gpt-4.1", 6, 2000, 400, 14),
    Upstream("deepseek", "deepseek", "deepseek-chat", 6, 1800, 350, 20),
    Upstream("local", "local-vllm", "qwen3-coder-30b", 4, 2000, 300, 9),
)
# outcome: (weight per 1000 requests, [(http status, error type, error message), ...])
OUTCOMES = {
    "ok": (930, [(200, "", "")]),
    "client_error": (25, [(404, "not_found_error", "model: {alias}-preview not found"),
                          (400, "invalid_request_error", "max_tokens: must be at most 64000"),
                          (401, "authentication_error", "invalid x-api-key"),
                          (413, "request_too_large", "request body is larger than 32 MB")]),
    "upstream_error": (20, [(529, "overloaded_error", "Overloaded"),
                            (502, "api_error", "upstream closed the connection"),
                            (504, "timeout_error", "upstream did not answer within 600 s"),
                            (500, "api_error", "Internal server error")]),
    "rate_limited": (15, [(429, "rate_limit_error", "rate limit: 60 requests per minute for this key"),
                          (429, "rate_limit_error", "upstream rate limit, retry after 12 s")]),
    "budget_exceeded": (3, [(429, "budget_exceeded", "monthly budget of this project is spent")]),
    "cancelled": (5, [(499, "", "")]),
    "interrupted": (2, [(200, "api_error", "upstream stream ended before message_stop")]),
}  # fmt: skip
USER_AGENTS = {
    "anthropic": ("claude-cli/2.0.14 (external, cli)", "claude-cli/2.0.8 (external, cli)", "Anthropic/Python 0.69.0",
                  "Anthropic/JS 0.65.0"),
    "openai": ("OpenAI/Python 1.99.1", "Cursor/1.7", "aider/0.86.1", "Continue/1.2.3", "OpenAI/JS 5.20.0"),
}  # fmt: skip
PROJECT_NAMES = ("platform", "research", "support-bot", "data", "mobile", "growth", "infra", "sales")
KEY_NAMES = ("ci-bot", "alice laptop", "bob laptop", "staging", "prod worker", "notebook", "evals", "cron")
TEMPLATES = 20_000  # distinct request shapes; each row picks one and gets its own time, id and key
_BASE62 = (string.ascii_letters + string.digits).encode()
_TO_BASE62 = bytes(_BASE62[i % 62] for i in range(256))


@dataclass(frozen=True, slots=True)
class World:
    keys: tuple[tuple[int, int], ...]  # (project id, key id), busiest first
    prices: dict[str, tuple[tuple[date, object], ...]]  # remote model -> (effective_from, price), oldest first


@dataclass(frozen=True, slots=True)
class _Price:
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal


def world_ensure(*, projects: int = 4, keys_per_project: int = 3) -> World:
    """Projects `synthetic-…`/named ones, their keys (accounts.keys.key_create), providers, accounts and prices,
    each made only if missing; existing rows are used as they are."""
    from accounts import keys as key_service
    from accounts.models import ApiKey, Project, Provider, ProviderAccount

    with transaction.atomic():
        for name, (kind, base_url, accounts) in PROVIDERS.items():
            provider, _ = Provider.objects.get_or_create(
                name=name, defaults={"kind": kind, "base_url": base_url, "enabled": False}
            )
            for account in accounts:
                ProviderAccount.objects.get_or_create(provider=provider, name=account)
        for model, values in PRICES.items():
            if not ModelPrice.objects.filter(model=model).exists():
                fields = dict(zip(("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok"),
                                  map(Decimal, values), strict=True))  # fmt: skip
                ModelPrice.objects.create(model=model, effective_from=PRICES_FROM, **fields)
        pairs = []
        for i in range(projects):
            slug = PROJECT_NAMES[i] if i < len(PROJECT_NAMES) else f"project-{i + 1:02d}"
            project, _ = Project.objects.get_or_create(slug=slug, defaults={"name": slug.replace("-", " ").title()})
            existing = list(ApiKey.objects.filter(project=project).order_by("id").values_list("id", flat=True))
            for k in range(len(existing), keys_per_project):
                name = KEY_NAMES[k] if k < len(KEY_NAMES) else f"key {k + 1}"
                key, _secret = key_service.key_create(project=project, name=name)
                existing.append(key.id)
            pairs += [(project.id, key_id) for key_id in existing[:keys_per_project]]
    prices: dict[str, list] = {}
    for p in ModelPrice.objects.filter(model__in=[u.remote_model for u in UPSTREAMS]).order_by("effective_from"):
        price = _Price(p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok)
        prices.setdefault(p.model, []).append((p.effective_from, price))
    # ledger_rows gives the keys traffic in this order, 1, 1/2, 1/3…: shuffled, so busy keys fall in several projects.
    random.Random(len(pairs)).shuffle(pairs)
    return World(keys=tuple(pairs), prices={m: tuple(v) for m, v in prices.items()})


def _lognormal(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return max(low, min(high, int(median * math.exp(rng.gauss(0, sigma)))))


def _templates(rng: random.Random, count: int) -> list[tuple]:
    """Request shapes: everything in a row except time, id, project/key and cost. The last item is True when
    the request never got to a key (a bad API key), the one before the token counts for pricing."""
    upstreams = [u for u in UPSTREAMS for _ in range(u.weight)]
    outcomes = [o for o, (weight, _) in OUTCOMES.items() for _ in range(weight)]
    out = []
    for _ in range(count):
        u = rng.choice(upstreams)
        outcome = rng.choice(outcomes)
        status, error_type, message = rng.choice(OUTCOMES[outcome][1])
        message = message.format(alias=u.alias)
        kind = PROVIDERS[u.provider][0]
        ingress = "anthropic" if rng.random() < (0.8 if kind == "anthropic" else 0.25) else "openai"
        stream = rng.random() < 0.75 or outcome == "interrupted"
        accounts = PROVIDERS[u.provider][2]
        account = accounts[0] if len(accounts) == 1 or rng.random() < 0.7 else rng.choice(accounts[1:])
        reached_upstream = not (outcome in ("client_error", "budget_exceeded") and status != 400) and not (
            outcome == "rate_limited" and "per minute" in message
        )
        no_key = status == 401
        inp = out_t = cache_read = cache_write = 0
        ttft = None
        attempts = 0
        if reached_upstream:
            attempts = 1 + (rng.random() < 0.06) + (rng.random() < 0.01)
            if outcome == "upstream_error":
                attempts = rng.choice((1, 2, 3))
        if outcome in ("ok", "cancelled", "interrupted"):
            inp = _lognormal(rng, u.input_median, 1.0, 1, 190_000)
            if kind == "anthropic" and ingress == "anthropic" and rng.random() < 0.65:
                cache_read = _lognormal(rng, 18_000, 0.9, 1024, 180_000)
                cache_write = _lognormal(rng, 1500, 1.0, 0, 40_000) if rng.random() < 0.4 else 0
            elif kind == "openai" and rng.random() < 0.3:
                cache_read = _lognormal(rng, 4000, 0.8, 1024, 100_000)
            out_t = _lognormal(rng, u.output_median, 0.9, 1, 32_000)
            if outcome != "ok":
                out_t = rng.randint(0, out_t)
        first = _lognormal(rng, 450 + u.ms_per_token * 20, 0.5, 60, 30_000)
        if outcome in ("ok", "cancelled", "interrupted"):
            latency = first + int(out_t * u.ms_per_token * rng.uniform(0.7, 1.4))
            ttft = first if stream else None
        elif reached_upstream:
            latency = _lognormal(rng, 900 if status != 504 else 600_000, 0.6, 20, 600_000)
        else:
            latency = rng.randint(1, 12)
        if outcome == "ok" and attempts > 1:
            latency += rng.randint(200, 2500)
        out.append((
            u.alias, u.provider if reached_upstream else "", account if reached_upstream else "",
            u.remote_model if reached_upstream else "", ingress, kind if reached_upstream else "", stream, status,
            outcome, inp, out_t, cache_read, cache_write, latency, ttft, attempts, error_type, message,
            rng.choice(USER_AGENTS[ingress]), (inp, out_t, cache_read, cache_write), no_key,
        ))  # fmt: skip
    return out


def _time_warp(start: datetime, end: datetime) -> tuple[list[float], list[float], float]:
    """Hour buckets between start and end, weighted by a team's working week: (cumulative weights, bucket start
    timestamps, total). Weekday 09-18 UTC weighs 10, weekday evenings 3, nights and weekends 1."""
    cumulative, starts, total = [], [], 0.0
    t = start.replace(minute=0, second=0, microsecond=0)
    while t < end:
        weekday = t.weekday() < 5
        weight = 10 if weekday and 9 <= t.hour < 18 else 3 if weekday and 7 <= t.hour < 23 else 1
        lo, hi = max(t, start), min(t + timedelta(hours=1), end)
        total += weight * (hi - lo).total_seconds() / 3600
        cumulative.append(total)
        starts.append(lo.timestamp())
        t += timedelta(hours=1)
    return cumulative, starts, total


def ledger_rows(
    world: World, n: int, *, days: float = 90, seed: int = 0, end: datetime | None = None
) -> Iterator[tuple]:
    """`n` rows in COLUMNS order, oldest first, between `end` - `days` and `end` (default now). created_at is an
    aware UTC datetime, cost_usd a Decimal, as the ORM would give them."""
    rng = random.Random(seed)
    end = end or timezone.now()
    start = end - timedelta(days=days)
    templates = _templates(rng, min(TEMPLATES, max(n, 1)))
    costs: dict[tuple[int, int], Decimal] = {}
    template_prices = [world.prices.get(t[3], ()) for t in templates]
    # Key choice: weight 1/(rank+1) (a few busy keys, a long tail) through a 4096-slot table.
    cumulative_keys = _cumsum([1 / (i + 1) for i in range(len(world.keys))])
    slots = [world.keys[bisect.bisect_left(cumulative_keys, (i + 0.5) / 4096 * cumulative_keys[-1])]
             for i in range(4096)] if world.keys else [(None, None)] * 4096  # fmt: skip
    cumulative, starts, total = _time_warp(start, end)
    span = [(b - a) for a, b in zip(starts, starts[1:] + [end.timestamp()], strict=True)]
    prev_weight = [0.0] + cumulative[:-1]
    t_count = len(templates)
    randbytes, rand, randrange = rng.randbytes, rng.random, rng.randrange
    fromtimestamp = datetime.fromtimestamp
    for i in range(n):
        target = (i + rand()) / n * total
        b = bisect.bisect_left(cumulative, target)
        b = min(b, len(cumulative) - 1)
        within = (target - prev_weight[b]) / ((cumulative[b] - prev_weight[b]) or 1)
        ts = starts[b] + within * span[b]
        created = fromtimestamp(ts, UTC)
        t_index = randrange(t_count)
        t = templates[t_index]
        versions = template_prices[t_index]
        cost = Decimal(0)
        if versions:
            v = len(versions) - 1
            if v and versions[v][0] > created.date():
                v = bisect.bisect_right([d for d, _ in versions], created.date()) - 1
            if v >= 0 and versions[v][0] <= created.date():
                cost = costs.get((t_index, v))
                if cost is None:
                    inp, out_t, cr, cw = t[19]
                    cost = costs[(t_index, v)] = pricing.cost(
                        input_tokens=inp, output_tokens=out_t, cache_read=cr, cache_write=cw, price=versions[v][1]
                    )
        project_id, key_id = (None, None) if t[20] else slots[randrange(4096)]
        yield (created, "req_" + randbytes(24).translate(_TO_BASE62).decode(), project_id, key_id, *t[:13], cost,
               *t[13:19], t[0], "", "", "", 0, _ZERO, 0, "")  # fmt: skip


def _cumsum(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


def ledger_insert(rows: Iterable[tuple], *, batch_size: int = 10_000, using: str = "default") -> int:
    """Appends rows (COLUMNS order) to the ledger, `batch_size` per transaction; returns how many."""
    connection = connections[using]
    table = connection.ops.quote_name(UsageRecord._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in COLUMNS)
    written = 0
    batch: list[tuple] = []
    if connection.vendor == "postgresql":
        def write(batch):
            with transaction.atomic(using=using), connection.cursor() as cursor:
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
    else:
        sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        created_at = UsageRecord._meta.get_field("created_at")
        if connection.vendor == "sqlite":  # what the ORM stores: naive in the connection's zone, as text
            zone = connection.timezone

            def prep(value):
                return str(value.astimezone(zone).replace(tzinfo=None))
        else:
            def prep(value):
                return created_at.get_db_prep_save(value, connection)

        def write(batch):
            prepared = [(prep(row[0]), *row[1:]) for row in batch]
            with transaction.atomic(using=using), connection.cursor() as cursor:
                cursor.executemany(sql, prepared)

    for row in rows:
        batch.append(row)
        if len(batch) >= batch_size:
            write(batch)
            written += len(batch)
            batch = []
    if batch:
        write(batch)
        written += len(batch)
    return written


def ledger_seed(n: int, *, days: float = 90, projects: int = 4, keys_per_project: int = 3, seed: int = 0,
                end: datetime | None = None, batch_size: int = 10_000, using: str = "default") -> int:  # fmt: skip
    world = world_ensure(projects=projects, keys_per_project=keys_per_project)
    return ledger_insert(ledger_rows(world, n, days=days, seed=seed, end=end), batch_size=batch_size, using=using)
