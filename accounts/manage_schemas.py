"""Schemas of the management API, for its OpenAPI page (/manage/v1/docs) and for checking what it answers.

Responses are declared with `response=` and checked by django-ninja. Request bodies are only *described* here
(`body()` puts an inlined JSON schema in the operation): they are validated by the config file's validator
(accounts/config.py), the one rule set the file, the admin and this API share, whose errors name each field.
"""

import dataclasses
from datetime import date, datetime

from ninja import Field, Schema
from pydantic import create_model

from . import fields
from .config import RouteSpec


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """A cursor page of `item`, as accounts/manage_common.page() answers."""
    return create_model(name, __base__=Schema, data=(list[item], ...), has_more=(bool, ...),
                        next_cursor=(str | None, ...))  # fmt: skip


class Error(Schema):
    type: str
    message: str
    problems: list[str] | None = None


class ErrorBody(Schema):
    error: Error


# --- projects -------------------------------------------------------------------------------------------------


class RedactionRules(Schema):
    """A project's redaction rules (docs/redaction.md): an action per group, and per rule where it differs."""

    secrets: str = Field("off", description="off | mask | block | log")
    pii: str = Field("off", description="off | mask | block | log (e-mail, phone, card numbers)")
    rules: dict[str, str] = Field({}, description='Per-rule actions over the group\'s, e.g. {"jwt": "log"}.')


class RequestLogs(Schema):
    mode: str = Field("off", description="off, metadata (no bodies) or full (request and response bodies)")
    retention_days: int = Field(30, description="Logs older than this are deleted by the nightly job")
    max_bytes: int = Field(262144, description="Size cap per log (JSON before compression); longer texts are cut")


class ProjectIn(Schema):
    slug: str
    name: str | None = None
    active: bool = True
    rpm: int | None = None
    tpm: int | None = None
    monthly_budget_usd: str | None = None
    daily_budget_usd: str | None = None
    budget_alert_percent: int = 80
    allowed_models: list[str] = []
    redaction: RedactionRules | None = None
    request_logs: RequestLogs | None = Field(None, description="Request logs (docs/request-logs.md); null = unchanged")


class ProjectOut(ProjectIn):
    id: int
    name: str
    created_at: datetime


ProjectPage = page_of(ProjectOut, "ProjectPage")


# --- keys -----------------------------------------------------------------------------------------------------


class KeyIn(Schema):
    name: str
    expires_at: datetime | None = None
    allowed_models: list[str] = []
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_concurrent: int | None = None
    monthly_budget_usd: str | None = None
    daily_budget_usd: str | None = None


class KeyOut(KeyIn):
    id: int
    project: str
    prefix: str
    status: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreated(KeyOut):
    secret: str


class KeyRotated(KeyCreated):
    replaces: KeyOut


class RotateIn(Schema):
    grace_seconds: int = 0


KeyPage = page_of(KeyOut, "KeyPage")


# --- providers and routes -------------------------------------------------------------------------------------


class AccountIn(Schema):
    name: str
    api_key: str | None = None
    weight: int = 1
    priority: int = 0
    enabled: bool = True


class AccountOut(Schema):
    name: str
    weight: int
    priority: int
    enabled: bool
    has_credential: bool
    last_error: str
    last_error_at: datetime | None
    cooldown_until: datetime | None


class ProviderIn(Schema):
    name: str
    preset: str | None = None
    kind: str | None = None
    base_url: str | None = None
    capabilities: dict = {}
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    extra_headers: dict[str, str] = {}
    enabled: bool = True
    accounts: list[AccountIn] = []


class ProviderOut(Schema):
    id: int
    name: str
    preset: str | None = None
    kind: str
    base_url: str
    capabilities: dict = {}
    connect_timeout: float
    read_timeout: float
    extra_headers: dict[str, str]
    enabled: bool
    accounts: list[AccountOut]
    warnings: list[str] = Field([], description="Problems to fix, e.g. a base URL that is the gateway's own address")


ProviderPage = page_of(ProviderOut, "ProviderPage")


class Target(Schema):
    provider: str
    model: str
    priority: int = 0
    weight: int = 1


def _route_fields(prefix: str = "") -> dict:
    """RouteSpec's own fields (the config file's route, accounts/config.py) as schema fields: `prefix` picks the
    retry_* group, named without the prefix as the API nests them under `retry`."""
    out = {}
    for f in dataclasses.fields(RouteSpec):
        if f.name == "targets" or f.name.startswith("retry_") != bool(prefix):
            continue
        default = ... if f.default is dataclasses.MISSING else f.default
        out[f.name.removeprefix(prefix)] = (f.type, Field(default, description=_ROUTE_NOTES.get(f.name)))
    return out


_ROUTE_NOTES = {
    "response_cache_ttl": "Response cache TTL for this route (for projects with the cache on); 0 = never; null = "
    "the project's TTL.",
    "on_all_open": "When every account's circuit breaker is open: 'panic' sends the request anyway (the client gets "
    "the provider's own answer), 'fail_fast' answers 529/503 at once; '' = GATEWAY_BREAKER_ON_ALL_OPEN.",
}
Retry = create_model("Retry", __base__=Schema, **_route_fields("retry_"))
RouteIn = create_model("RouteIn", __base__=Schema, **_route_fields(), retry=(Retry, Retry()), targets=(list[Target], ...))


class RouteOut(RouteIn):
    id: int


RoutePage = page_of(RouteOut, "RoutePage")


# --- prices and numbers ---------------------------------------------------------------------------------------


# The rates, the batch discount and the long-context tier are usage.ModelPrice's number fields (money as strings,
# as everywhere in this API); the config file's validator reads the same fields (accounts/config.py _prices).
PriceIn = create_model(
    "PriceIn",
    __base__=Schema,
    model=(str, ...),
    effective_from=(date | None, None),
    **{f.name: (int | None, f.default if not f.null else None) if f.get_internal_type().endswith("IntegerField")
       else (str | None, None) if f.null else (str, str(f.default)) for f in fields.numbers("usage.ModelPrice")},
)  # fmt: skip


class PriceOut(PriceIn):
    id: int
    effective_from: date


PricePage = page_of(PriceOut, "PricePage")


class Counters(Schema):
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: str
    cache_hits: int = Field(0, description="Requests answered by the response cache (no upstream call).")
    saved_usd: str = Field("0", description="Cost avoided by the response cache and token reduction (estimated).")


class UsageRow(Counters):
    period: str | None = None
    project: str | None = None
    key: str | None = None
    model: str | None = None
    provider: str | None = None


class Usage(Schema):
    start: date
    end: date
    interval: str
    group_by: str | None
    totals: Counters
    series: list[UsageRow]


class Costs(Schema):
    start: date
    end: date
    group_by: str
    total_usd: str
    data: list[UsageRow]


class KindCount(Schema):
    provider: str
    kind: str
    count: int


class ErrorStats(Schema):
    start: date
    end: date
    requests: int
    errors: int
    error_rate: float
    by_kind: dict[str, int]
    by_provider: dict[str, int]
    by_provider_and_kind: list[KindCount]


class FailedRequest(Schema):
    id: int
    request_id: str
    created_at: datetime
    project_id: int | None
    key_id: int | None
    model: str
    provider: str
    http_status: int
    kind: str
    error_type: str
    message: str


ErrorPage = page_of(FailedRequest, "ErrorPage")


class BudgetStatus(Schema):
    project: str | None = None
    key: str | None = None
    month_usd: str
    monthly_budget_usd: str | None
    month_percent: float | None
    today_usd: str
    daily_budget_usd: str | None
    today_percent: float | None
    # the month-end forecast and the monthly budget's runway (usage/forecast.py, docs/finance.md)
    daily_rate_usd: str | None = Field(None, description="average spend of the last rate_days full days")
    rate_days: int = 0
    month_forecast_usd: str | None = Field(None, description="month_usd + daily_rate_usd x the days after today")
    runs_out_on: date | None = Field(None, description="the day the monthly budget is used up at that rate; "
                                                       "null: not this month, or no monthly budget")
    budget_used_up: bool = False


class Budgets(Schema):
    projects: list[BudgetStatus]
    keys: list[BudgetStatus]
    month_usd: str | None = None  # every request this month, with a project or without
    today_usd: str | None = None


class AccountStatus(Schema):
    provider: str
    account: str
    enabled: bool
    breaker: str
    reason: str
    open_for_seconds: float
    recent_failures: int
    in_flight: int
    last_error: str
    last_error_at: datetime | None


class Status(Schema):
    process: int
    accounts: list[AccountStatus]
    unhealthy: int
    in_flight: int


class RequestLogOut(Schema):
    request_id: str
    created_at: datetime
    project_id: int | None
    key_id: int | None
    model: str
    ingress_api: str
    stream: bool
    http_status: int
    outcome: str
    mode: str = Field(description="full (bodies kept) or metadata")
    meta: dict = Field(description="Message count, tool names, tool calls, stop reason")
    body_bytes: int
    stored_bytes: int
    truncated: bool
    bodies: dict | None = Field(
        None, description="{request, response} in the caller's format; only for a `logs` or `write` token, and only "
        "in full mode (absent for a `read` token)",
    )


# --- helpers --------------------------------------------------------------------------------------------------

ERRORS = {code: ErrorBody for code in (400, 401, 403, 404, 409, 422, 429)}


def body(schema: type[Schema]) -> dict:
    """`openapi_extra` describing a JSON request body of `schema`, nested models inlined (the page needs no
    components for them)."""
    raw = schema.model_json_schema()
    definitions = raw.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(raw)}}}}


def responds(status: int, schema) -> dict:
    """The `response=` of an endpoint: its success schema and the shared error body for every failure."""
    return {status: schema, **ERRORS}
