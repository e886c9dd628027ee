"""GET /v1/models in both APIs' shapes (docs/translation.md §6.2). Which one a caller gets depends on its headers:
Anthropic clients always send anthropic-version (policy: or x-api-key)."""

from datetime import datetime, timezone


def caller_api(headers) -> str:
    return "anthropic" if headers.get("anthropic-version") or headers.get("x-api-key") else "openai"


def _anthropic_model(route) -> dict:
    created = datetime.fromtimestamp(route.created_at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": route.alias, "display_name": route.display_name, "created_at": created}


def _openai_model(route) -> dict:
    return {"id": route.alias, "object": "model", "created": route.created_at, "owned_by": "gatehouse"}


def render_list(api: str, routes, *, limit: int = 1000, after_id: str | None = None, before_id: str | None = None) -> dict:
    if api == "openai":
        return {"object": "list", "data": [_openai_model(r) for r in routes]}
    ids = [r.alias for r in routes]
    if after_id in ids:
        routes = routes[ids.index(after_id) + 1 :]
    elif before_id in ids:
        routes = routes[: ids.index(before_id)][-limit:]
    page = routes[:limit]
    return {
        "data": [_anthropic_model(r) for r in page],
        "has_more": len(routes) > len(page),
        "first_id": page[0].alias if page else None,
        "last_id": page[-1].alias if page else None,
    }


def render_one(api: str, route) -> dict:
    return _openai_model(route) if api == "openai" else _anthropic_model(route)


def inference_profile(route) -> dict:
    """One entry of Bedrock's ListInferenceProfiles for a Claude model (`us.anthropic.<name>-v1:0`)."""
    profile = f"us.anthropic.{route.alias}-v1:0"
    created = datetime.fromtimestamp(route.created_at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "inferenceProfileName": route.display_name,
        "inferenceProfileId": profile,
        "inferenceProfileArn": f"arn:aws:bedrock:us-east-1:000000000000:inference-profile/{profile}",
        "description": f"{route.display_name} through Gatehouse",
        "models": [{"modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/anthropic.{route.alias}-v1:0"}],
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
        "createdAt": created,
        "updatedAt": created,
    }
