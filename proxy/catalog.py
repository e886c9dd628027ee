"""The non-generating endpoints: model lists and token counting. They return plain dicts; errors are
GatewayErrors, rendered by proxy/api.py like any other."""

from dataclasses import replace

import orjson

from . import attempts, breaker, formats, hop, ids, routing, tokens, upstreams
from .errors import NotFound, UpstreamError
from .formats import model_list
from .metering import Call

CLAUDE_CODE = "claude-code/"  # the user agent of Claude Code's model discovery (its chat requests say claude-cli/)


async def list_models(key, api: str, params, user_agent: str = "") -> dict:
    """The key's aliases; for Claude Code's model discovery (its user agent), the Claude-style list it can pick
    from (routing.Snapshot.claude_models)."""
    snapshot = await routing.snapshot()
    visible = snapshot.claude_models(key) if user_agent.startswith(CLAUDE_CODE) else snapshot.visible_routes(key)
    limit = _int_param(params.get("limit"), 20 if api == "anthropic" else 1000)
    return model_list.render_list(
        api, visible, limit=limit, after_id=params.get("after_id"), before_id=params.get("before_id")
    )


async def one_model(key, api: str, model_id: str) -> dict:
    visible = (await routing.snapshot()).visible_routes(key)
    route = next((r for r in visible if r.alias == model_id), None)
    if route is None:
        raise NotFound(f"model: {model_id} not found", param="model", code="model_not_found")
    return model_list.render_one(api, route)


async def inference_profiles(key) -> dict:
    """Bedrock's ListInferenceProfiles, as Claude Code's Bedrock mode reads it at start: the key's Claude models,
    each under the Bedrock id that proxy/formats/envelope.py maps back to it; without a key, none."""
    listed = [] if key is None else (await routing.snapshot()).claude_models(key)
    models = [r for r in listed if r.alias.startswith("claude")]
    return {"inferenceProfileSummaries": [model_list.inference_profile(r) for r in models]}


def _int_param(value, default: int) -> int:
    try:
        return max(1, min(int(value), 1000)) if value else default
    except ValueError:
        return default


def counts_tokens(target) -> bool:
    upstream = upstreams.get(target.provider.kind)
    return upstream.api == "anthropic" and "count_tokens" in upstream.paths


async def count_tokens(key, body: dict, client_headers) -> dict:
    """Upstreams that speak Anthropic's API and offer a count (`count_tokens` in their Upstream's paths) count
    exactly (forwarded, through the same retry and failover loop as chat requests); when the route's first
    choice cannot, the local estimate in proxy.tokens answers."""
    hop.check(client_headers)  # a gateway that counts through itself (not ledgered, like every count)
    anthropic = formats.get("anthropic")
    route = (await routing.snapshot()).resolve(key, body.get("model"))
    if not counts_tokens(route.targets[0]):
        return {"input_tokens": tokens.estimate_input_tokens(anthropic.parse_count_tokens_request(body))}
    route = replace(route, targets=tuple(t for t in route.targets if counts_tokens(t)))
    call = Call(ids.request_id(), "anthropic", client_headers.get("user-agent", ""), key=key)
    try:
        health = await breaker.health(route.account_ids)
        answer = await attempts.first_answer(
            call, route, body, anthropic, client_headers, health, operation="count_tokens"
        )
        try:
            return orjson.loads(answer.raw)
        except orjson.JSONDecodeError:
            raise UpstreamError("upstream sent a response that is not JSON", kind="api_error", status=502) from None
    finally:
        call.release()  # token counts are free and not part of the ledger
