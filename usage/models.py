from django.db import models
from django.utils import timezone


class ModelPrice(models.Model):
    model = models.CharField(max_length=200, db_index=True, help_text="The provider's model id (remote id).")
    input_per_mtok = models.DecimalField("input $/Mtok", max_digits=12, decimal_places=6, default=0)
    output_per_mtok = models.DecimalField("output $/Mtok", max_digits=12, decimal_places=6, default=0)
    cache_read_per_mtok = models.DecimalField("cache read $/Mtok", max_digits=12, decimal_places=6, default=0)
    cache_write_per_mtok = models.DecimalField("cache write $/Mtok", max_digits=12, decimal_places=6, default=0)
    effective_from = models.DateField(default=timezone.localdate)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["model", "effective_from"], name="one_price_per_model_and_day")]
        verbose_name = "model price"

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
    ]

    created_at = models.DateTimeField(default=timezone.now)
    request_id = models.CharField(max_length=64)
    project = models.ForeignKey("accounts.Project", null=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+")
    alias = models.CharField(max_length=200, blank=True)
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
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField("time to first token ms", null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Upstream calls made (retries and failover).")
    error_type = models.CharField(max_length=50, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["project", "created_at"]),
            models.Index(fields=["api_key", "created_at"]),
            models.Index(fields=["created_at"]),
        ]
        verbose_name = "usage record"

    def __str__(self):
        return f"{self.request_id} {self.alias} {self.outcome}"
