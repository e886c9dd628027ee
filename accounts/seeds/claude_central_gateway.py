"""claude-central-gateway (Anthropic Messages in, OpenAI Chat Completions out; Hono, environment only).

One shared client token, GATEWAY_TOKEN (sent as x-api-key or Authorization: Bearer), an OpenAI key (its OpenAI
SDK also reads OPENAI_BASE_URL), and MODEL_MAP: `claude-model:openai-model` pairs separated by commas; a name
with no pair passes through as it is. Here each pair is an exact route to the OpenAI provider, which beats the
environment start's own `claude-*` patterns.
"""

from .common import Var

NAME, TITLE = "claude-central-gateway", "claude-central-gateway"
PROVIDER = "openai"  # the provider config_seeds.from_environment makes from OPENAI_API_KEY

VARIABLES = (
    Var("GATEWAY_TOKEN", "a client key with this secret in project default (as GATEWAY_API_KEY)", secret=True),
    Var("OPENAI_API_KEY", "provider openai (api.openai.com, or OPENAI_BASE_URL)", "same", secret=True),
    Var("OPENAI_BASE_URL", "provider openai's base URL", "same"),
    Var("MODEL_MAP", "a route per pair: alias claude-model -> provider openai, model openai-model"),
)


def model_map(raw: str) -> list[tuple[str, str]]:
    """MODEL_MAP's pairs as its gateway reads them: split on commas, then on the first colon."""
    pairs = []
    for item in (part.strip() for part in raw.split(",")):
        if item:
            alias, colon, model = item.partition(":")
            pairs.append((alias.strip(), model.strip()) if colon and alias.strip() else (item, item))
    return pairs


def amend(environ, document: dict) -> list[str]:
    token = environ.get("GATEWAY_TOKEN", "").strip()
    keys = document.setdefault("inbound_keys", [])
    if token and token not in {k["secret"] for k in keys}:
        keys.append({"project": "default", "name": "GATEWAY_TOKEN", "secret": token})
    if not environ.get("MODEL_MAP", "").strip():
        return []
    if not any(p["name"] == PROVIDER for p in document.get("providers", [])):
        return ["MODEL_MAP: its models are OpenAI models, but OPENAI_API_KEY is not set"]
    routes = document.setdefault("models", [])
    for alias, model in model_map(environ["MODEL_MAP"]):
        routes[:] = [r for r in routes if r["alias"] != alias]
        routes.append({"alias": alias, "targets": [{"provider": PROVIDER, "model": model}]})
    return []
