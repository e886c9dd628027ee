"""The proxy's own rows: stored Responses API responses (R-8), for `previous_response_id` and the
GET / DELETE /v1/responses/{id} endpoints. proxy/responses_store.py reads and writes them."""

from django.db import models
from django.utils import timezone


class StoredResponse(models.Model):
    """One response made with `store` true (the default), kept for GATEWAY_RESPONSES_RETENTION_DAYS.

    `response` is the Response object as the caller got it (its `output` is the output items); `input_items` is
    the input the model saw: the previous response's items (when previous_response_id was given) then this
    request's own, each with an id. A follow-up turn's history is `input_items` + `response["output"]`, read
    in one query (each row repeats its chain's history rather than pointing at it; retention bounds the cost)."""

    id = models.CharField(primary_key=True, max_length=80)  # resp_<48 hex>, the Response object's id
    project = models.ForeignKey("accounts.Project", on_delete=models.CASCADE, related_name="+")
    api_key_id = models.BigIntegerField(null=True, blank=True)  # the key that made it (audit only; no FK)
    created_at = models.DateTimeField(default=timezone.now)
    model = models.CharField(max_length=200)  # the alias the caller asked for
    status = models.CharField(max_length=20)  # completed | incomplete | failed
    # JSON text (orjson, both ways): these can be large, and are only ever read and written whole
    response = models.TextField()
    input_items = models.TextField(default="[]")

    class Meta:
        indexes = [
            models.Index(fields=["project", "created_at"], name="proxy_resp_project_created"),
            models.Index(fields=["created_at"], name="proxy_resp_created"),  # the retention purge
        ]

    def __str__(self):
        return self.id
