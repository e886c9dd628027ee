"""Native upstream batches: when every item of a batch routes first to one provider with a batch API
(capability `supports_batches`: Anthropic's Message Batches, or an OpenAI-compatible server's Files + Batches),
the gateway submits ONE batch upstream (items translated where the caller's API differs), beat polls it
(`tasks.tick`), and the results are mapped back by item, each recorded in the ledger with the provider's batch
discount (usage.pricing.usage_cost(batch=True)). Otherwise the batch runs item by item (batches/runner.py).
The provider's batch API itself (paths, upload, polling, result lines) is its Upstream's batch_* methods
(proxy/upstreams), and each item's upstream body comes from the same Upstream.payload as live traffic.

    submit(batch_id)  -> True when the batch went upstream (the `start` task then has nothing to fan out)
    poll_all()        every native batch still open: fetch its upstream status, and its results once ended
    cancel(batch)     forward a cancel upstream (best effort: the results then say which items were canceled)

What a native item does not get (the provider runs it, not the request core): the key's rate limits (the provider's
batch queue is the limit) and a budget reservation before it runs; its cost is counted when its result arrives.
Upstream custom ids are `i<item id>`: valid for both APIs whatever the caller's custom_id looks like.
"""

import logging
from datetime import timedelta
from decimal import Decimal

import httpx
import orjson
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.keys import key_by_id
from proxy import formats, ids, policies, routing, upstreams
from proxy.attempts import target_options
from proxy.errors import GatewayError
from usage import ledger, pricing
from usage.ledger_row import LedgerRow, error_fields, usage_fields

from . import services
from .models import Batch, BatchItem

log = logging.getLogger(__name__)


def submit(batch_id: str) -> bool:
    batch = Batch.objects.get(id=batch_id)
    if batch.native:
        return True  # submitted already (this task was delivered twice)
    key = key_by_id(batch.api_key_id) if batch.api_key_id else None
    items = list(BatchItem.objects.filter(batch_id=batch_id, status="pending").order_by("seq"))
    if not settings.GATEWAY_BATCH_NATIVE or key is None or not items or batch.status != "in_progress":
        return False
    snapshot = async_to_sync(routing.snapshot)()
    chosen = _choose(snapshot, key, items)
    if chosen is None:
        return False
    provider, account, routed = chosen
    lines, models = _translate(batch, provider, routed)
    upstream_id = upstreams.get(provider.kind).batch_submit(provider, account, lines)
    with transaction.atomic():
        Batch.objects.filter(id=batch_id).update(native={
            "id": upstream_id, "provider": provider.name, "account_id": account.id, "api": _api(provider),
            "models": models})
        BatchItem.objects.filter(batch_id=batch_id, status="pending").update(
            status="running", started_at=timezone.now(), lease_until=batch.expires_at + timedelta(days=1))
    log.info("batch %s submitted to %s as %s (%d items)", batch_id, provider.name, upstream_id, len(items))
    return True


def _choose(snapshot, key, items):
    """(provider, account, [(item, route, target)]) when every item's first target is one batch-capable provider."""
    routed, provider = [], None
    for item in items:
        try:
            route = snapshot.resolve(key, item.body.get("model"))
        except GatewayError:
            return None
        target = route.targets[0]
        if not target.provider.capabilities.supports_batches or not target.provider.accounts:
            return None
        if provider is not None and target.provider.name != provider.name:
            return None
        provider = target.provider
        routed.append((item, route, target))
    account = min(provider.accounts, key=lambda a: a.priority)
    return provider, account, routed


def _api(provider) -> str:
    return upstreams.get(provider.kind).api


def _translate(batch, provider, routed) -> tuple[list[tuple[str, dict]], dict]:
    ingress, upstream = formats.get(batch.ingress_api), upstreams.get(provider.kind)
    lines, models = [], {}
    for item, route, target in routed:
        options = target_options(route, target, item.body.get("model"))
        lines.append((f"i{item.id}", upstream.payload(ingress, item.body, options)[1]))
        models[str(item.id)] = [route.alias, options.remote_model]
    return lines, models


def cancel(batch: Batch) -> None:
    native = batch.native
    provider, account = _provider_account(native)
    if provider is None:
        return
    try:
        upstreams.get(provider.kind).batch_cancel(provider, account, native["id"])
    except httpx.HTTPError as exc:
        log.warning("could not cancel upstream batch %s: %s", native["id"], exc)


def _provider_account(native: dict):
    snapshot = async_to_sync(routing.snapshot)()
    for route in [*snapshot.exact.values(), *snapshot.patterns]:
        for target in route.targets:
            if target.provider.name == native["provider"]:
                account = next((a for a in target.provider.accounts if a.id == native["account_id"]), None)
                return target.provider, account
    return None, None


# --- results back into items and the ledger ---------------------------------------------------------------------


def poll_all() -> int:
    ended = 0
    for batch in Batch.objects.filter(native__isnull=False, status__in=("in_progress", "canceling")):
        try:
            ended += poll(batch)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("polling upstream batch of %s failed: %s", batch.id, exc)
    return ended


def poll(batch: Batch) -> bool:
    provider, account = _provider_account(batch.native)
    if provider is None:
        return False
    upstream = upstreams.get(provider.kind)
    ended = upstream.batch_poll(provider, account, batch.native["id"])
    if ended is None:
        return False
    results = upstream.batch_results(provider, account, ended)
    snapshot = async_to_sync(routing.snapshot)()
    items = {f"i{item.id}": item for item in BatchItem.objects.filter(batch_id=batch.id, status="running")}
    spent = Decimal(0)
    for result in results:
        item = items.get(result.custom_id)
        if item is not None:
            spent += _settle(batch, item, result.kind, result.status, result.body, snapshot)
    if spent:  # native items were never admitted: their cost still counts against the key's and project's budgets
        policies.charge_now([(key_by_id(batch.api_key_id), spent)])
    services.finish_if_done(batch.id)
    return True


def _settle(batch, item, kind: str, status: int, body, snapshot) -> Decimal:
    """The item's outcome first (only if it is still open: a second poll changes nothing), then its row.
    Returns the cost recorded (0 when nothing was)."""
    fields, usage, error = _outcome(batch, item, kind, status, body)
    request_id = ids.request_id()
    now = timezone.now()
    if not BatchItem.objects.filter(id=item.id, status="running").update(
            request_id=request_id, ended_at=now, lease_until=None, **fields):
        return Decimal(0)
    if kind in ("canceled", "expired"):
        return Decimal(0)  # never ran: nothing to record
    alias, remote_model = batch.native["models"].get(str(item.id), ["", ""])
    price = snapshot.price(remote_model, timezone.localdate())
    cost = pricing.usage_cost(usage, price, batch=True)  # the provider's batch discount (ModelPrice.batch_discount)
    ledger.record(LedgerRow(
        request_id=request_id, ingress_api=batch.ingress_api, http_status=fields["status_code"],
        outcome="ok" if kind == "succeeded" else "client_error" if status < 500 else "upstream_error",
        created_at=now, project_id=batch.project_id, api_key_id=batch.api_key_id, alias=alias[:200],
        provider=batch.native["provider"], account=_account_name(batch), remote_model=remote_model[:200],
        upstream_api=batch.native["api"], cost_usd=cost, attempts=1, batch_id=batch.id,
        user_agent="gatehouse native batch", **usage_fields(usage), **error_fields(error)))
    return cost


def _account_name(batch) -> str:
    provider, account = _provider_account(batch.native)
    return account.name if account else ""


def _outcome(batch, item, kind: str, status: int, body):
    """(item fields, usage, error) with the answer in the caller's API."""
    from proxy.canonical import Usage

    if kind in ("canceled", "expired"):
        return {"status": kind}, Usage(), None
    ingress, upstream_format = formats.get(batch.ingress_api), formats.get(batch.native["api"])
    if kind == "succeeded":
        usage = upstream_format.usage_from_response(body)
        if upstream_format.NAME == ingress.NAME:
            answer = {**body, "model": item.body.get("model")}
        else:
            chat = ingress.parse_request(item.body)
            answer = ingress.render_response(upstream_format.parse_response(body, chat), chat)
        return {"status": "succeeded", "status_code": 200, "result": answer}, usage, None
    error = upstream_format.parse_error(status or 500, orjson.dumps(body or {}), {})
    code, content, _ = ingress.render_error(error)
    return ({"status": "errored", "status_code": code, "result": orjson.loads(content), "error_type": error.kind,
             "error_message": error.message[:1000]}, Usage(), error)
