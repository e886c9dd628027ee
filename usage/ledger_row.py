"""The ledger's row: LedgerRow (one UsageRecord, typed), the mappings that fill it, and its JSON line in a spool.

Adding a ledger column: add the field to usage.models.UsageRecord (with a migration) and to LedgerRow below
(with a default, so older spools still replay), then fill it in proxy/metering.py (Call.row).
tests/unit/test_ledger_spool.py checks that the two field lists match.
"""

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal

import orjson
from django.utils import timezone
from django.utils.dateparse import parse_datetime


@dataclass
class LedgerRow:
    """One UsageRecord, typed: a misspelt field is a TypeError where the row is built, not a row lost at insert."""

    request_id: str
    ingress_api: str
    http_status: int
    outcome: str
    created_at: datetime = field(default_factory=timezone.now)
    project_id: int | None = None
    api_key_id: int | None = None
    alias: str = ""
    requested_model: str = ""
    provider: str = ""
    account: str = ""
    remote_model: str = ""
    upstream_api: str = ""
    stream: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # the 1-hour part of cache_write_tokens (usage.pricing)
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    ttft_ms: int | None = None
    attempts: int = 0
    error_type: str = ""
    error_message: str = ""
    user_agent: str = ""
    batch_id: str = ""
    session_id: str = ""
    route_rule: str = ""
    reductions: str = ""
    tokens_saved: int = 0
    saved_usd: Decimal = Decimal(0)
    # Not a column: the request's log for a project that keeps them (usage/request_logs.py). It travels with the
    # row through the spool and is inserted into its own table in the transaction that inserts the row.
    request_log: dict | None = None


def columns(row: LedgerRow) -> dict:
    """The row's UsageRecord values."""
    values = vars(row).copy()
    del values["request_log"]
    return values


def usage_fields(usage) -> dict:
    """A row's token columns from a usage object (proxy.canonical.Usage): the one mapping for live traffic, batch
    items (both through proxy.metering) and native batch results (batches/native.py)."""
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens,
            "cache_write_1h_tokens": usage.cache_write_1h_tokens}  # fmt: skip


def error_fields(error) -> dict:
    """A row's error columns from a proxy.errors.GatewayError, or none."""
    if error is None:
        return {"error_type": "", "error_message": ""}
    return {"error_type": error.kind, "error_message": error.message[:300]}


ROW_FIELDS = {f.name: f for f in fields(LedgerRow) if f.name != "request_log"}  # the UsageRecord columns
_DECIMALS = ("cost_usd", "saved_usd")


def encode(kind: str, row: LedgerRow | None = None, request_id: str = "") -> bytes:
    record = {"k": kind, "row": row} if row is not None else {"k": kind, "id": request_id}
    return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)


def row_from_json(data: dict) -> LedgerRow:
    """A spooled row back into a LedgerRow. Fields this version does not know are dropped (a newer spool)."""
    values = {k: v for k, v in data.items() if k in ROW_FIELDS}
    values["request_log"] = data.get("request_log")
    if isinstance(values.get("created_at"), str):
        values["created_at"] = parse_datetime(values["created_at"])
    for name in _DECIMALS:
        if name in values:
            values[name] = Decimal(str(values[name]))
    return LedgerRow(**values)
