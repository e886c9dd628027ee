"""Schemas of the management API, for its OpenAPI page (/manage/v1/docs) and for checking what it answers.

Responses are declared with `response=` and checked by django-ninja. Request bodies are only *described* here
(`body()` puts an inlined JSON schema in the operation): they are validated by the config file's validator
(accounts/config.py), the one rule set the file, the admin and this API share, whose errors name each field.
"""

from datetime import date, datetime

from ninja import Field, Schema


class Error(Schema):
    type: str
    message: str
    problems: list[str] | None = None


class ErrorBody(Schema):
    error: Error


# --- projects -------------------------------------------------------------------------------------------------


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
    request_logs: RequestLogs | None = Field(None, description="Request logs (docs/request-logs.md); null = unchanged")


class ProjectOut(ProjectIn):
    id: int
    name: str
    created_at: datetime


class ProjectPage(Schema):
    data: list[ProjectOut]
    has_more: bool
    next_cursor: str | None


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


class KeyPage(Schema):
    data: list[KeyOut]
    has_more: bool
    next_cursor: str | None


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


class ProviderPage(Schema):
    data: list[ProviderOut]
    has_more: bool
    next_cursor: str | None


class Target(Schema):
    provider: str
    model: str
    priority: int = 0
    weight: int = 1


class Retry(Schema):
    max_attempts: int | None = None
    base_ms: int | None = None
    cap_ms: int | None = None
    deadline_seconds: float | None = None


class RouteIn(Schema):
    alias: str
    display_name: str = ""
    enabled: bool = True
    default_max_tokens: int | None = None
    max_output_tokens: int | None = None
    strategy: str = "priority"
    retry: Retry = Retry()
    response_cache_ttl: int | None = Field(
        None, description="Response cache TTL for this route (for projects with the cache on); 0 = never; null = the "
        "project's TTL.",
    )
    on_all_open: str = Field(
        "", description="When every account's circuit breaker is open: 'panic' sends the request anyway (the client "
        "gets the provider's own answer), 'fail_fast' answers 529/503 at once; '' = GATEWAY_BREAKER_ON_ALL_OPEN.",
    )
    targets: list[Target]


class RouteOut(RouteIn):
    id: int


class RoutePage(Schema):
    data: list[RouteOut]
    has_more: bool
    next_cursor: str | None


# --- prices and numbers ---------------------------------------------------------------------------------------


class PriceIn(Schema):
    model: str
    input_per_mtok: str = "0"
    output_per_mtok: str = "0"
    cache_read_per_mtok: str = "0"
    cache_write_per_mtok: str = "0"
    cache_write_1h_per_mtok: str | None = None
    batch_discount: str = "0"
    effective_from: date | None = None
    # The long-context tier (usage.pricing): all four rates are required with a threshold.
    long_context_threshold: int | None = None
    long_input_per_mtok: str | None = None
    long_output_per_mtok: str | None = None
    long_cache_read_per_mtok: str | None = None
    long_cache_write_per_mtok: str | None = None
    long_cache_write_1h_per_mtok: str | None = None


class PriceOut(PriceIn):
    id: int
    effective_from: date


class PricePage(Schema):
    data: list[PriceOut]
    has_more: bool
    next_cursor: str | None


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


class ErrorPage(Schema):
    data: list[FailedRequest]
    has_more: bool
    next_cursor: str | None


class BudgetStatus(Schema):
    project: str | None = None
    key: str | None = None
    month_usd: str
    monthly_budget_usd: str | None
    month_percent: float | None
    today_usd: str
    daily_budget_usd: str | None
    today_percent: float | None


class Budgets(Schema):
    projects: list[BudgetStatus]
    keys: list[BudgetStatus]


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
