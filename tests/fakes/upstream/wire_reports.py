"""The vendors' usage and cost reports (what usage/bill_reports.py reads), faked from what this fake served: every
answered Messages / Chat / Responses request counts its tokens under the UTC day, the wire that served it
(Anthropic or OpenAI), the inference key's id and the model, and the reports sum those, priced at the prices
configured here. A planted adjustment makes the vendor disagree with what a client (the gateway) saw.

    GET /v1/organizations/usage_report/messages   Anthropic Admin API: day buckets, group_by[]=model|api_key_id,
                                                  api_key_ids[], starting_at/ending_at, limit (<= 31), page
    GET /v1/organizations/cost_report             amounts in cents as decimal strings, group_by[]=description
                                                  (one line per model x token type)
    GET /v1/organization/usage/completions        OpenAI: Unix-second buckets, group_by[]=model|api_key_id,
                                                  api_key_ids[], limit (<= 31), page
    GET /v1/organization/costs                    amount {value (USD number), currency "usd"}, group_by[]=line_item
                                                  ("<model>, input_tokens" ...), limit (<= 180), page
    POST /_fake/reports/config   {"admin_key"?, "prices"?: {model: {input, output, cache_read, cache_write}} ($/Mtok),
                                  "model_ids"?: {model: the id the reports name (a dated snapshot)}}
    POST /_fake/reports/adjust   {"api": "anthropic"|"openai", "day": "YYYY-MM-DD"|"today", "model", "in"?, "out"?,
                                  "cache_read"?, "cache_write"?, "cost_usd"?}   added to that day's figures
    POST /_fake/reports/reset    forget what was served, the adjustments and the configuration
    GET  /_fake/reports/calls    ["GET /path?query", ...] of the report requests so far

Auth: the admin key only (default ADMIN_KEY), as x-api-key with anthropic-version (Anthropic) or Authorization:
Bearer (OpenAI); the inference key gets 401 in the API's error JSON, as the real ones answer. Buckets: one per
UTC day in the range, empty ones included; `page` is the opaque token the previous page gave.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import orjson
from aiohttp import web

from . import wire_anthropic, wire_openai

ADMIN_KEY = "sk-admin-fake-reports"
JSON = "application/json"
KINDS = ("in", "out", "cache_read", "cache_write")
ANTHROPIC_TOKEN_TYPES = {"in": "uncached_input_tokens", "out": "output_tokens",
                         "cache_read": "cache_read_input_tokens",
                         "cache_write": "cache_creation.ephemeral_5m_input_tokens"}  # fmt: skip
OPENAI_LINE_ITEMS = {"in": "input_tokens", "out": "output_tokens", "cache_read": "cached_input_tokens",
                     "cache_write": "cache_write_input_tokens"}  # fmt: skip


class ReportsState:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # (day, api, key id, model) -> [in, out, cache_read, cache_write, requests]
        self.served: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        self.extra_cost: dict[tuple, Decimal] = defaultdict(Decimal)  # (day, api, model) -> USD
        self.admin_key = ADMIN_KEY
        self.prices: dict[str, dict[str, Decimal]] = {}
        self.model_ids: dict[str, str] = {}
        self.calls: list[str] = []  # "GET /path?query" of every report request (GET /_fake/reports/calls)


REPORTS = web.AppKey("reports", ReportsState)


@lru_cache(maxsize=64)
def key_id(key: str, api: str) -> str:
    return ("apikey_" if api == "anthropic" else "key_") + hashlib.sha256(key.encode()).hexdigest()[:20]


def served(request: web.Request, anthropic: bool, model: str, usage) -> None:
    """Count one answered request (server._generate calls this)."""
    state = request.app.get(REPORTS)
    if state is None:
        return
    api = "anthropic" if anthropic else "openai"
    auth = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
    row = state.served[(datetime.now(UTC).date(), api, key_id(auth, api), model)]
    for i, n in enumerate(usage):
        row[i] += n
    row[4] += 1


def _figures(state: ReportsState, api: str, day: date, keys: list[str]) -> dict[tuple[str, str], list[int]]:
    """(key id, model) -> [in, out, cache_read, cache_write, requests] of one day."""
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for (d, a, kid, model), row in state.served.items():
        if d == day and a == api and (not keys or kid in keys or kid == "adjustment"):
            for i, n in enumerate(row):
                out[(kid, model)][i] += n
    return out


def _cost(state: ReportsState, model: str, kind: str, tokens: int) -> Decimal:
    rate = Decimal(str(state.prices.get(model, {}).get({"in": "input", "out": "output"}.get(kind, kind), 0)))
    return tokens * rate / 1_000_000


def _days(first: date, end: date, page: str | None, limit: int) -> tuple[list[date], str | None]:
    start = date.fromisoformat(base64.urlsafe_b64decode(page.removeprefix("page_")).decode()) if page else first
    days = [start + timedelta(days=n) for n in range((end - start).days)]
    more = days[limit:]
    return days[:limit], ("page_" + base64.urlsafe_b64encode(more[0].isoformat().encode()).decode()) if more else None


def _list(query, name: str) -> list[str]:
    values = query.getall(name + "[]", []) + query.getall(name, [])
    return [v for value in values for v in value.split(",") if v]


def _json(body, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=JSON)


def _range(request: web.Request, unix: bool, max_limit: int):
    """(first day, end day (exclusive), limit, page) from the query, or an error message."""
    q = request.query
    try:
        if unix:
            first = datetime.fromtimestamp(int(q["start_time"]), UTC).date()
            end = datetime.fromtimestamp(int(q["end_time"]), UTC).date() if "end_time" in q else None
        else:
            first = datetime.fromisoformat(q["starting_at"].replace("Z", "+00:00")).date()
            end = datetime.fromisoformat(q["ending_at"].replace("Z", "+00:00")).date() if "ending_at" in q else None
        limit = int(q.get("limit", 7))
    except KeyError as e:
        return f"{e.args[0]}: Field required"
    except ValueError as e:
        return f"invalid query parameter: {e}"
    if not 1 <= limit <= max_limit:
        return f"limit: must be between 1 and {max_limit}"
    if q.get("bucket_width", "1d") != "1d":
        return "bucket_width: only 1d is faked"
    return first, end or first + timedelta(days=limit), limit, q.get("page")


def _admin(request: web.Request, api: str):
    """The reports' auth; None when the request may read them, else the error response."""
    state = request.app[REPORTS]
    rid = f"req_fake_reports_{len(state.served)}"
    if api == "anthropic":
        if request.headers.get("x-api-key") != state.admin_key:
            return _json(orjson.loads(wire_anthropic.error_body(401, "invalid x-api-key", rid)), 401)
        if "anthropic-version" not in request.headers:
            return _json(orjson.loads(wire_anthropic.error_body(400, "anthropic-version: header is required", rid)), 400)
    elif request.headers.get("authorization") != f"Bearer {state.admin_key}":
        return _json(orjson.loads(wire_openai.error_body(401, "Incorrect API key provided.", rid)), 401)
    return None


def _bad(api: str, message: str) -> web.Response:
    body = wire_anthropic.error_body(400, message, "") if api == "anthropic" else wire_openai.error_body(400, message, "")
    return _json(orjson.loads(body), 400)


async def anthropic_usage(request: web.Request) -> web.Response:
    return _report(request, "anthropic", False, 31, _anthropic_usage_rows)


async def anthropic_cost(request: web.Request) -> web.Response:
    return _report(request, "anthropic", False, 31, _anthropic_cost_rows)


async def openai_usage(request: web.Request) -> web.Response:
    return _report(request, "openai", True, 31, _openai_usage_rows)


async def openai_costs(request: web.Request) -> web.Response:
    return _report(request, "openai", True, 180, _openai_cost_rows)


def _report(request: web.Request, api: str, unix: bool, max_limit: int, rows) -> web.Response:
    state = request.app[REPORTS]
    state.calls.append(f"GET {request.path_qs}")
    denied = _admin(request, api)
    if denied is not None:
        return denied
    parsed = _range(request, unix, max_limit)
    if isinstance(parsed, str):
        return _bad(api, parsed)
    first, end, limit, page = parsed
    days, next_page = _days(first, end, page, limit)
    group_by = set(_list(request.query, "group_by"))
    keys = _list(request.query, "api_key_ids")
    data = []
    for day in days:
        results = rows(state, day, _figures(state, api, day, keys), group_by)
        if unix:
            start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp())
            data.append({"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results})
        else:
            data.append({"starting_at": f"{day}T00:00:00Z", "ending_at": f"{day + timedelta(days=1)}T00:00:00Z",
                         "results": results})  # fmt: skip
    body = {"data": data, "has_more": next_page is not None, "next_page": next_page}
    return _json({"object": "page", **body} if unix else body)


def _grouped(state, figures: dict, group_by: set, api: str, day: date) -> dict[tuple, list]:
    """Figures summed by the asked dimensions (key id and/or model); planted token adjustments included."""
    out: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, 0, 0])
    by_model = "model" in group_by
    for (kid, model), row in figures.items():
        group = (kid if "api_key_id" in group_by and kid != "adjustment" else None, model if by_model else None)
        for i, n in enumerate(row):
            out[group][i] += n
    for (d, a, model), _ in state.extra_cost.items():
        if d == day and a == api:
            out.setdefault((None, model if by_model else None), [0, 0, 0, 0, 0])
    return out


def _reported(state, model: str | None) -> str | None:
    return state.model_ids.get(model, model) if model is not None else None


def _anthropic_usage_rows(state, day, figures, group_by) -> list[dict]:
    rows = []
    for (kid, model), (inp, out, cread, cwrite, _) in sorted(_grouped(state, figures, group_by, "anthropic", day).items(),
                                                             key=lambda kv: str(kv[0])):  # fmt: skip
        rows.append({"uncached_input_tokens": inp, "cache_creation": {"ephemeral_1h_input_tokens": 0,
                     "ephemeral_5m_input_tokens": cwrite}, "cache_read_input_tokens": cread, "output_tokens": out,
                     "server_tool_use": {"web_search_requests": 0}, "api_key_id": kid, "workspace_id": None,
                     "model": _reported(state, model), "service_tier": None, "context_window": None})  # fmt: skip
    return rows


def _model_costs(state, api: str, day: date, figures: dict) -> dict[str, dict[str, Decimal]]:
    """model -> token kind -> USD; a planted extra cost goes on the output line."""
    costs: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(KINDS, Decimal(0)))
    for (_, model), row in figures.items():
        for i, kind in enumerate(KINDS):
            costs[model][kind] += _cost(state, model, kind, row[i])
    for (d, a, model), usd in state.extra_cost.items():
        if d == day and a == api:
            costs[model]["out"] += usd
    return costs


def _anthropic_cost_rows(state, day, figures, group_by) -> list[dict]:
    costs = _model_costs(state, "anthropic", day, figures)
    if "description" not in group_by:
        total = sum((c for kinds in costs.values() for c in kinds.values()), Decimal(0))
        return [_anthropic_cost(total, None, None)] if costs else []
    return [_anthropic_cost(usd, model, kind, state) for model, kinds in sorted(costs.items())
            for kind, usd in kinds.items() if usd]  # fmt: skip


def _anthropic_cost(usd: Decimal, model, kind, state=None) -> dict:
    described = model is not None
    return {"currency": "USD", "amount": _plain(usd * 100), "workspace_id": None,
            "description": f"{model} Usage - {ANTHROPIC_TOKEN_TYPES[kind]}" if described else None,
            "cost_type": "tokens" if described else None, "context_window": "0-200k" if described else None,
            "model": _reported(state, model) if described else None, "service_tier": "standard" if described else None,
            "token_type": ANTHROPIC_TOKEN_TYPES[kind] if described else None}  # fmt: skip


def _plain(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _openai_usage_rows(state, day, figures, group_by) -> list[dict]:
    grouped = _grouped(state, figures, group_by, "openai", day)
    return [{"object": "organization.usage.completions.result", "input_tokens": inp + cread + cwrite,
             "output_tokens": out, "input_cached_tokens": cread, "input_audio_tokens": 0, "output_audio_tokens": 0,
             "num_model_requests": n, "project_id": None, "user_id": None, "api_key_id": kid,
             "model": _reported(state, model), "batch": None, "service_tier": None}
            for (kid, model), (inp, out, cread, cwrite, n) in sorted(grouped.items(), key=lambda kv: str(kv[0]))]  # fmt: skip


def _openai_cost_rows(state, day, figures, group_by) -> list[dict]:
    costs = _model_costs(state, "openai", day, figures)
    if "line_item" not in group_by:
        total = sum((c for kinds in costs.values() for c in kinds.values()), Decimal(0))
        return [_openai_cost(total, None)] if costs else []
    return [_openai_cost(usd, f"{_reported(state, model)}, {OPENAI_LINE_ITEMS[kind]}")
            for model, kinds in sorted(costs.items()) for kind, usd in kinds.items() if usd]  # fmt: skip


def _openai_cost(usd: Decimal, line_item) -> dict:
    return {"object": "organization.costs.result", "amount": {"value": float(usd), "currency": "usd"},
            "line_item": line_item, "project_id": None}  # fmt: skip


async def config(request: web.Request) -> web.Response:
    state = request.app[REPORTS]
    body = orjson.loads(await request.read() or b"{}")
    state.admin_key = body.get("admin_key", state.admin_key)
    for model, rates in (body.get("prices") or {}).items():
        state.prices[model] = {k: Decimal(str(v)) for k, v in rates.items()}
    state.model_ids.update(body.get("model_ids") or {})
    return _json({"ok": True})


async def adjust(request: web.Request) -> web.Response:
    state = request.app[REPORTS]
    body = orjson.loads(await request.read())
    day = datetime.now(UTC).date() if body.get("day", "today") == "today" else date.fromisoformat(body["day"])
    api, model = body["api"], body["model"]
    row = state.served[(day, api, "adjustment", model)]
    for i, kind in enumerate(KINDS):
        row[i] += int(body.get(kind, 0))
    state.extra_cost[(day, api, model)] += Decimal(str(body.get("cost_usd", 0)))
    return _json({"ok": True})


async def calls(request: web.Request) -> web.Response:
    return _json(request.app[REPORTS].calls)


async def reset(request: web.Request) -> web.Response:
    request.app[REPORTS].reset()
    return _json({"ok": True})


def register(app: web.Application) -> None:
    app[REPORTS] = ReportsState()
    app.router.add_get("/v1/organizations/usage_report/messages", anthropic_usage)
    app.router.add_get("/v1/organizations/cost_report", anthropic_cost)
    app.router.add_get("/v1/organization/usage/completions", openai_usage)
    app.router.add_get("/v1/organization/costs", openai_costs)
    app.router.add_post("/_fake/reports/config", config)
    app.router.add_post("/_fake/reports/adjust", adjust)
    app.router.add_post("/_fake/reports/reset", reset)
    app.router.add_get("/_fake/reports/calls", calls)
