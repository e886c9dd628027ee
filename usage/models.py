from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts import crypto


# A rate in USD per million tokens; its validators are the rule the config file, the management API, the
# catalogue and the admin all apply (accounts/fields.py).
_RATE = {"max_digits": 12, "decimal_places": 6, "validators": [MinValueValidator(0)]}
_TIER_RATE = {**_RATE, "null": True, "blank": True}


class ModelPrice(models.Model):
    model = models.CharField(max_length=200, db_index=True, help_text="The provider's model id (remote id).")
    input_per_mtok = models.DecimalField("input $/Mtok", default=0, **_RATE)
    output_per_mtok = models.DecimalField("output $/Mtok", default=0, **_RATE)
    cache_read_per_mtok = models.DecimalField("cache read $/Mtok", default=0, **_RATE)
    cache_write_per_mtok = models.DecimalField("cache write $/Mtok", default=0, **_RATE)
    cache_write_1h_per_mtok = models.DecimalField(
        "1-hour cache write $/Mtok", **_TIER_RATE,
        help_text="Anthropic prices 1-hour cache writes apart from 5-minute ones; empty = the cache write rate.",
    )
    batch_discount = models.DecimalField(
        max_digits=5, decimal_places=4, default=0, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Fraction taken off for a provider's native batch API (0.5 = half price).",
    )
    effective_from = models.DateField(default=timezone.localdate)
    # The long-context tier (usage.pricing.cost): some vendors bill a whole request, output included, at higher
    # rates once its prompt passes a size (Claude Sonnet 4/4.5 with the 1M window above 200k, Gemini Pro above
    # 200k, Claude Haiku 5.5 above 100k). Empty threshold = one tier; with one, the four tier rates are required
    # (the constraint below), so a half-filled tier cannot undercharge.
    long_context_threshold = models.PositiveIntegerField(
        "long-context threshold (prompt tokens)", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="A request whose prompt (input + cache read + cache write tokens) is above this many tokens is "
                  "billed entirely at the long-context rates below. Empty = the rates above apply to every request.",
    )  # fmt: skip
    long_input_per_mtok = models.DecimalField("long-context input $/Mtok", **_TIER_RATE)
    long_output_per_mtok = models.DecimalField("long-context output $/Mtok", **_TIER_RATE)
    long_cache_read_per_mtok = models.DecimalField("long-context cache read $/Mtok", **_TIER_RATE)
    long_cache_write_per_mtok = models.DecimalField("long-context cache write $/Mtok", **_TIER_RATE)
    long_cache_write_1h_per_mtok = models.DecimalField(
        "long-context 1-hour cache write $/Mtok", **_TIER_RATE,
        help_text="Empty = the long-context cache write rate (as for the 1-hour rate above).",
    )

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="one_price_per_model_and_day"),
            models.CheckConstraint(
                condition=(
                    models.Q(long_context_threshold__isnull=True, long_input_per_mtok__isnull=True,
                             long_output_per_mtok__isnull=True, long_cache_read_per_mtok__isnull=True,
                             long_cache_write_per_mtok__isnull=True, long_cache_write_1h_per_mtok__isnull=True)
                    | models.Q(long_context_threshold__isnull=False, long_input_per_mtok__isnull=False,
                               long_output_per_mtok__isnull=False, long_cache_read_per_mtok__isnull=False,
                               long_cache_write_per_mtok__isnull=False)
                ),  # fmt: skip
                name="long_context_tier_whole_or_absent",
            ),
        ]
        verbose_name = "model price"

    def clean(self):
        """The admin form's check of the tier (the same rule as the constraint, with the field to fix)."""
        from django.core.exceptions import ValidationError

        from .pricing import long_tier_problem

        problem = long_tier_problem({f.name: getattr(self, f.name) for f in self._meta.fields})
        if problem:
            raise ValidationError({problem[0]: problem[1]})

    def __str__(self):
        return f"{self.model} from {self.effective_from}"


class UsageRecord(models.Model):
    """The ledger: one row per API request, whatever its outcome. Append-only."""

    OUTCOMES = [
        ("ok", "ok"),
        ("client_error", "client error"),
        ("upstream_error", "upstream error"),
        ("rate_limited", "rate limited"),
        ("budget_exceeded", "budget exceeded"),
        ("cancelled", "cancelled"),
        ("interrupted", "interrupted"),
        ("cache_hit", "cache hit"),
    ]

    created_at = models.DateTimeField(default=timezone.now)
    request_id = models.CharField(max_length=64)
    project = models.ForeignKey("accounts.Project", null=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+")
    alias = models.CharField(max_length=200, blank=True)
    requested_model = models.CharField(max_length=200, blank=True, help_text="The model name the client asked for.")
    provider = models.CharField(max_length=100, blank=True)
    account = models.CharField(max_length=100, blank=True)
    remote_model = models.CharField(max_length=200, blank=True)
    ingress_api = models.CharField(max_length=20)
    upstream_api = models.CharField(max_length=20, blank=True)
    stream = models.BooleanField(default=False)
    http_status = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=20, choices=OUTCOMES)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0, help_text="Every cache-write token (5-minute and 1-hour).")
    cache_write_1h_tokens = models.PositiveIntegerField(
        "1-hour cache write tokens", default=0,
        help_text="The part of the cache writes made with a one-hour TTL, when the upstream reports it (usage.pricing).",
    )
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField("time to first token ms", null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Upstream calls made (retries and failover).")
    error_type = models.CharField(max_length=50, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    batch_id = models.CharField(max_length=64, blank=True, help_text="The batch this request was an item of.")
    session_id = models.CharField(
        max_length=100, blank=True, help_text="The client's session: Claude Code's X-Claude-Code-Session-Id header."
    )
    route_rule = models.CharField(max_length=100, blank=True, help_text="The smart-routing rule that chose the model.")
    reductions = models.CharField(max_length=200, blank=True, help_text="Token-reduction layers that changed the request.")
    tokens_saved = models.PositiveIntegerField(default=0, help_text="Estimated input tokens saved by reductions or the cache.")
    saved_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0, help_text="Cost avoided (cache hit, reductions).")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # cost_usd makes a project's or key's spend over a period an index-only read (usage.selectors).
            models.Index(fields=["project", "created_at", "cost_usd"], name="usage_project_created_cost_idx"),
            models.Index(fields=["api_key", "created_at", "cost_usd"], name="usage_key_created_cost_idx"),
            models.Index(fields=["created_at"]),
            # The admin's search and filters: each one, alone or with a date range, reads the newest rows in
            # index order and stops at a page (usage/admin.py; tests/test_admin_query_plans.py checks the plans).
            models.Index(fields=["request_id"], name="usage_request_id_idx"),
            models.Index(fields=["batch_id"], name="usage_batch_id_idx", condition=~models.Q(batch_id="")),
            models.Index(fields=["session_id"], name="usage_session_id_idx", condition=~models.Q(session_id="")),
            models.Index(fields=["outcome", "created_at"], name="usage_outcome_created_idx"),
            models.Index(fields=["alias", "created_at"], name="usage_alias_created_idx"),
            models.Index(fields=["provider", "created_at"], name="usage_provider_created_idx"),
            models.Index(fields=["ingress_api", "created_at"], name="usage_ingress_created_idx"),
            models.Index(fields=["stream", "created_at"], name="usage_stream_created_idx"),
        ]
        verbose_name = "usage record"

    def __str__(self):
        return f"{self.request_id} {self.alias} {self.outcome}"


class DailyRollup(models.Model):
    """The ledger summed per day (UTC) x project x key x alias x model x provider: what the finance report and the
    dashboard read for past days, and what stays when retention deletes raw rows. Written only by
    usage.services.rollup_day, which replaces a day's rows as a whole (idempotent)."""

    # outcome -> counter column; every outcome in UsageRecord.OUTCOMES has one (services.rollup_day relies on it)
    OUTCOME_COLUMNS = {
        "ok": "ok", "client_error": "client_errors", "upstream_error": "upstream_errors",
        "rate_limited": "rate_limited", "budget_exceeded": "budget_exceeded", "cancelled": "cancelled",
        "interrupted": "interrupted", "cache_hit": "cache_hits",
    }  # fmt: skip

    day = models.DateField()
    project = models.ForeignKey("accounts.Project", null=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+")
    alias = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True, help_text="The upstream model that was priced.")
    provider = models.CharField(max_length=100, blank=True)
    requests = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0)
    client_errors = models.PositiveIntegerField(default=0)
    upstream_errors = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0)
    budget_exceeded = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    interrupted = models.PositiveIntegerField(default=0)
    cache_hits = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    saved_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    latency_p50_ms = models.PositiveIntegerField(default=0)
    latency_p95_ms = models.PositiveIntegerField(default=0)
    ttft_p50_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="usage_rollup_day_idx"),
            models.Index(fields=["project", "day"], name="usage_rollup_project_day_idx"),
            models.Index(fields=["api_key", "day"], name="usage_rollup_key_day_idx"),
        ]
        verbose_name = "daily rollup"

    def __str__(self):
        return f"{self.day} {self.alias or self.model} {self.requests} requests"

    @property
    def errors(self) -> int:
        return self.requests - self.ok - self.cache_hits


class RolledDay(models.Model):
    """One row per day that has been rolled up: when, and how many ledger rows the rollup covered. The rollup
    locks this row while it replaces the day (so two rollups of one day never interleave), and retention deletes
    raw rows only of days listed here."""

    day = models.DateField(unique=True)
    rolled_at = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)

    class Meta:
        ordering = ["-day"]

    def __str__(self):
        return f"{self.day}: {self.rows} rows"


class BillSource(models.Model):
    """Where one provider account's own bill comes from (usage/reconcile.py): the vendor's admin API, with its
    admin key (not the account's inference key: the vendors issue report keys apart), or CSV files imported."""

    KIND_CHOICES = [
        ("anthropic_admin", "Anthropic Admin API (usage and cost reports)"),
        ("openai_admin", "OpenAI organization API (usage and costs)"),
        ("csv", "CSV import (docs/reconciliation.md)"),
    ]

    account = models.OneToOneField("accounts.ProviderAccount", on_delete=models.CASCADE, related_name="bill_source")
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    admin_key_encrypted = models.TextField(blank=True, editable=False)
    admin_key_last4 = models.CharField("admin key", max_length=8, blank=True, editable=False)
    reports_url = models.CharField(
        max_length=500, blank=True,
        help_text="Empty: the provider's base URL (https://api.anthropic.com, https://api.openai.com/v1).",
    )
    api_key_id = models.CharField(
        "vendor API key id", max_length=100, blank=True,
        help_text="Narrows the usage report to this account's key (apikey_… / key_…). Empty: the whole "
        "organization (or project). The vendors' cost reports cannot be narrowed by key.",
    )
    project_id = models.CharField(
        "workspace / project id", max_length=100, blank=True,
        help_text="Anthropic workspace (wrkspc_…) or OpenAI project (proj_…) to narrow both reports to.",
    )
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True, editable=False)

    class Meta:
        verbose_name = "bill source"

    def __str__(self):
        return f"{self.account} ({self.get_kind_display()})"

    @property
    def admin_key(self) -> str:
        return crypto.decrypt(self.admin_key_encrypted)

    def set_admin_key(self, secret: str) -> None:
        self.admin_key_encrypted = crypto.encrypt(secret) if secret else ""
        self.admin_key_last4 = crypto.masked(secret)


class BillLine(models.Model):
    """One day (UTC) x provider account x model: the provider's own figures next to the ledger's, as the last
    reconciliation found them (usage/reconcile.py writes these, replacing a day's rows as a whole). A provider
    figure left empty was not given by its report (e.g. a CSV without cost)."""

    day = models.DateField()
    account = models.ForeignKey("accounts.ProviderAccount", on_delete=models.CASCADE, related_name="+")
    provider_name = models.CharField(max_length=100, help_text="The ledger's provider name at the last run.")
    account_name = models.CharField(max_length=100)
    model = models.CharField(max_length=200, help_text="The model, date suffix removed (claude-sonnet-4-5).")
    source = models.CharField(max_length=20, choices=BillSource.KIND_CHOICES)
    bill_input_tokens = models.BigIntegerField(null=True, blank=True)
    bill_output_tokens = models.BigIntegerField(null=True, blank=True)
    bill_cache_read_tokens = models.BigIntegerField(null=True, blank=True)
    bill_cache_write_tokens = models.BigIntegerField(null=True, blank=True)
    bill_cost_usd = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    ledger_requests = models.PositiveIntegerField(default=0)
    ledger_input_tokens = models.BigIntegerField(default=0)
    ledger_output_tokens = models.BigIntegerField(default=0)
    ledger_cache_read_tokens = models.BigIntegerField(default=0)
    ledger_cache_write_tokens = models.BigIntegerField(default=0)
    ledger_cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    over_tolerance = models.BooleanField(default=False)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day", "provider_name", "account_name", "model"]
        constraints = [models.UniqueConstraint(fields=["account", "day", "model"], name="one_bill_line_per_day_model")]
        indexes = [models.Index(fields=["day"], name="usage_billline_day_idx")]
        verbose_name = "bill line"

    def __str__(self):
        return f"{self.day} {self.provider_name}/{self.account_name} {self.model}"


class RequestLog(models.Model):
    """A request's log, for projects that keep them (accounts.models.Project.request_log_mode): its metadata and,
    in full mode, the request and response bodies as zstd-compressed JSON. Written only by the ledger writer, in
    the transaction that inserts the request's ledger row (usage/request_logs.py); linked to that row by
    request_id, not a foreign key, so the ledger's retention never touches logs and logs expire on their own."""

    created_at = models.DateTimeField(default=timezone.now)
    request_id = models.CharField(max_length=64)
    project = models.ForeignKey("accounts.Project", null=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+")
    model = models.CharField(max_length=200, blank=True, help_text="The model name the client asked for.")
    ingress_api = models.CharField(max_length=20)
    stream = models.BooleanField(default=False)
    http_status = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=20, choices=UsageRecord.OUTCOMES)
    full = models.BooleanField(default=False, help_text="Bodies kept (full mode); else metadata only.")
    meta = models.JSONField(default=dict, blank=True, help_text="Tool names, stop reason, message count, sizes.")
    body = models.BinaryField(null=True, blank=True, help_text="zstd-compressed JSON: request and response.")
    body_bytes = models.PositiveIntegerField(default=0, help_text="The bodies' JSON size before compression.")
    stored_bytes = models.PositiveIntegerField(default=0, help_text="Compressed size.")
    truncated = models.BooleanField(default=False, help_text="Cut to the project's size cap.")

    class Meta:
        ordering = ["-created_at"]
        # The admin's filters, each alone or with a date range, read newest first through one of these and stop
        # at a page (tests/e2e/test_request_logs.py checks the plans); retention reads (project, created_at).
        indexes = [
            models.Index(fields=["created_at"], name="reqlog_created_idx"),
            models.Index(fields=["request_id"], name="reqlog_request_id_idx"),
            models.Index(fields=["project", "created_at"], name="reqlog_project_created_idx"),
            models.Index(fields=["api_key", "created_at"], name="reqlog_key_created_idx"),
            models.Index(fields=["model", "created_at"], name="reqlog_model_created_idx"),
            models.Index(fields=["http_status", "created_at"], name="reqlog_status_created_idx"),
        ]
        verbose_name = "request log"

    def __str__(self):
        return f"{self.request_id} {self.model} {self.http_status}"
