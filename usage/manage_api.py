"""Management API numbers and prices: what Finance and on-call scripts read.

Prices use the config file's shape and validator (`prices:` in accounts/config.py, applied by
usage/services.py). Usage, costs, errors and budget status come from usage/selectors.py, the same reads as the
finance report, so the two agree to the cent. Shared plumbing is in accounts/manage_common.py.
"""

from datetime import date

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router

from accounts import services
from accounts.config import ConfigError
from accounts.manage_common import ManagementError, audited, idempotent, json_body, not_found, page

from .models import ModelPrice

router = Router(tags=["prices and usage"])

PRICE_RATES = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")


def price_out(price: ModelPrice) -> dict:
    return {"id": price.id, "model": price.model, **{f: str(getattr(price, f)) for f in PRICE_RATES},
            "effective_from": price.effective_from.isoformat()}  # fmt: skip


@router.get("/prices", summary="Prices per model, newest first (effective-dated)")
def prices_list(request: HttpRequest, cursor: str | None = None, limit: int = 50, model: str | None = None):
    queryset = ModelPrice.objects.filter(model=model) if model else ModelPrice.objects.all()
    return page(queryset, cursor=cursor, limit=limit, render=price_out)


@router.post("/prices", summary="Set a model's price from a date (default today); older rows keep their cost")
@idempotent
def prices_create(request: HttpRequest):
    body = json_body(request)
    if any(isinstance(v, str) and "${" in v for v in body.values()):
        raise ManagementError(422, "invalid_request_error", "invalid body", ["${VAR} is for config files"])
    with transaction.atomic():
        try:
            services.config_apply({"prices": [body]}, environ={})
        except ConfigError as e:
            raise ManagementError(422, "invalid_request_error", "invalid body", e.problems) from None
        on = date.fromisoformat(str(body["effective_from"])) if body.get("effective_from") else None
        price = ModelPrice.objects.filter(model=body["model"], **({"effective_from": on} if on else {})).order_by("-effective_from").first()
        audited(request, "set", price, price_out(price))
    return JsonResponse(price_out(price), status=201)


@router.delete("/prices/{price_id}", summary="Delete a price row (rows already costed keep their cost)")
def prices_delete(request: HttpRequest, price_id: int):
    price = ModelPrice.objects.filter(id=price_id).first()
    if price is None:
        raise not_found(f"price {price_id}")
    with transaction.atomic():
        audited(request, "delete", price, price_out(price))
        price.delete()
    return HttpResponse(status=204)
