"""The non-generating endpoints: model lists and token counting."""

import orjson
from django.http import HttpResponse, JsonResponse

from accounts import keys

from . import formats, ids, routing, tokens, upstreams
from .errors import GatewayError, NotFound, UpstreamError
from .formats import model_list
from .pipeline import error_response, read_json_body, target_options
from .upstreams import http


async def list_models(request, model_id: str | None = None) -> HttpResponse:
    api = model_list.caller_api(request.headers)
    try:
        key = await keys.key_authenticate(keys.credential_from_headers(request.headers))
        visible = (await routing.snapshot()).visible_routes(key)
        if model_id is None:
            limit = _int_param(request.GET.get("limit"), 20 if api == "anthropic" else 1000)
            page = model_list.render_list(
                api, visible, limit=limit, after_id=request.GET.get("after_id"), before_id=request.GET.get("before_id")
            )
            return JsonResponse(page)
        route = next((r for r in visible if r.alias == model_id), None)
        if route is None:
            raise NotFound(f"model: {model_id} not found", param="model", code="model_not_found")
        return JsonResponse(model_list.render_one(api, route))
    except GatewayError as err:
        return error_response(formats.get(api), err, ids.request_id())


def _int_param(value, default: int) -> int:
    try:
        return max(1, min(int(value), 1000)) if value else default
    except ValueError:
        return default


async def count_tokens(request) -> HttpResponse:
    """Anthropic upstreams count exactly (forwarded); for the others the local estimate in proxy.tokens."""
    anthropic = formats.get("anthropic")
    try:
        key = await keys.key_authenticate(keys.credential_from_headers(request.headers))
        body = read_json_body(request)
        route = (await routing.snapshot()).resolve(key, body.get("model"))
        last_error: GatewayError | None = None
        for target, account in routing.attempt_order(route):
            if target.provider.kind != "anthropic":
                estimate = tokens.estimate_input_tokens(anthropic.parse_count_tokens_request(body))
                return JsonResponse({"input_tokens": estimate})
            upstream = upstreams.get("anthropic")
            payload = anthropic.passthrough_request(body, target_options(route, target, body.get("model")))
            try:
                response = await http.client().post(
                    upstream.url(target.provider, "count_tokens"),
                    content=orjson.dumps(payload),
                    headers=upstream.headers(target.provider, account, request.headers),
                    timeout=http.timeout(target.provider.connect_timeout, 60),
                )
            except Exception as exc:
                last_error = UpstreamError(f"could not reach upstream: {type(exc).__name__}", kind="api_error", status=502)
                continue
            if response.status_code >= 400:
                last_error = anthropic.parse_error(response.status_code, response.content, dict(response.headers))
                if last_error.retryable:
                    continue
                raise last_error
            return HttpResponse(response.content, content_type="application/json")
        raise last_error or UpstreamError("no upstream account is available", kind="overloaded")
    except GatewayError as err:
        return error_response(anthropic, err, ids.request_id())
