"""Batch jobs: a batch of chat requests (items) run in the background for one project, and the files the OpenAI
Files API holds for them.

A Batch has one status for every API (`in_progress` → `canceling` → `ended`, with an `outcome` once ended);
batches/wire.py maps it onto each API's own vocabulary. Item bodies and results are JSON rows (one per item);
whole files (OpenAI input, output and error files) live in Django storage (`STORAGES["batches"]`), never in the
database. Counts are read from the items (batches/selectors.py), so no counter can drift from the truth.
"""

from django.db import models
from django.utils import timezone

from accounts.models import ApiKey, Project


class BatchFile(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batch_files")
    purpose = models.CharField(max_length=32)  # batch | batch_output
    filename = models.CharField(max_length=255)
    bytes = models.BigIntegerField()
    storage_name = models.CharField(max_length=255, help_text="Path in the batches storage.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.filename} ({self.id})"


class Batch(models.Model):
    KINDS = [("anthropic", "Anthropic Message Batches"), ("openai", "OpenAI Batch API"), ("simple", "/v1/batch")]
    STATUSES = [("validating", "validating"), ("in_progress", "in progress"), ("canceling", "canceling"),
                ("ended", "ended")]
    OUTCOMES = [("", "—"), ("completed", "completed"), ("canceled", "canceled"), ("expired", "expired"),
                ("failed", "failed")]

    id = models.CharField(primary_key=True, max_length=64)
    kind = models.CharField(max_length=16, choices=KINDS)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="batches",
                                help_text="Items run as this key: its limits, budgets and allowed models.")
    status = models.CharField(max_length=16, choices=STATUSES, default="in_progress")
    outcome = models.CharField(max_length=16, choices=OUTCOMES, default="", blank=True)
    ingress_api = models.CharField(max_length=16, help_text="The API the items speak: anthropic or openai.")
    total = models.PositiveIntegerField(default=0)
    endpoint = models.CharField(max_length=64, blank=True)
    completion_window = models.CharField(max_length=8, default="24h")
    metadata = models.JSONField(null=True, blank=True)
    errors = models.JSONField(null=True, blank=True, help_text="Why a batch failed validation (OpenAI).")
    input_file = models.ForeignKey(BatchFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    output_file = models.ForeignKey(BatchFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error_file = models.ForeignKey(BatchFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    in_progress_at = models.DateTimeField(null=True, blank=True)
    finalizing_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancel_initiated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    native = models.JSONField(null=True, blank=True, help_text="The upstream batch this one was submitted as "
                              "(batches/native.py): its id, provider, account, API and each item's model.")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["project", "kind", "-created_at"], name="batch_project_kind_idx"),
                   models.Index(fields=["status", "expires_at"], name="batch_status_expiry_idx")]

    def __str__(self):
        return self.id


class BatchItem(models.Model):
    STATUSES = [("pending", "pending"), ("running", "running"), ("succeeded", "succeeded"),
                ("errored", "errored"), ("canceled", "canceled"), ("expired", "expired")]
    DONE = ("succeeded", "errored", "canceled", "expired")

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    seq = models.PositiveIntegerField(help_text="Position in the request (results keep this order).")
    custom_id = models.CharField(max_length=512)
    body = models.JSONField(help_text="The chat request, in the batch's ingress API.")
    status = models.CharField(max_length=16, choices=STATUSES, default="pending")
    request_id = models.CharField(max_length=64, blank=True, help_text="The ledger row's request id.")
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A running item's worker holds it till then.")
    executions = models.PositiveSmallIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="The answer, or the error body.")
    error_type = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "seq"]
        constraints = [models.UniqueConstraint(fields=["batch", "custom_id"], name="batch_item_unique_custom_id")]
        indexes = [models.Index(fields=["batch", "status"], name="batch_item_status_idx")]

    def __str__(self):
        return f"{self.batch_id}/{self.custom_id}"
