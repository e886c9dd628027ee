"""LLM Gateway (OpenAI and Anthropic formats in, a pool of Anthropic accounts out; Go, `config.yaml` + a CLI).

Its file, as its requirements show it:

    server: {host, port, timeout_seconds}
    auth: {api_keys: [plain client keys]}
    accounts:                       # `upstream_accounts` in its later releases, with `provider` and `base_url`
      - {id, name, type: api_key | oauth, status: active | disabled | error, api_key,
         client_id, client_secret, access_token, refresh_token, expires_at}
    load_balancing: {strategy: round_robin | random | weighted | health_first}   # its default: health_first
    logging: {...}

becomes: one provider per (vendor, base_url) holding the accounts (the pool), named by each account's `id` (the
name its CLI verbs take); a `claude-*` route (`gpt-*` for OpenAI accounts) passing the model through, with the
strategy; each `auth.api_keys` entry a client key in project `llm-gateway`; OAuth accounts with their tokens
(config_seeds applies `oauth_accounts`). Later releases keep client keys only as SHA-256 hashes
(`gateway_keys[].key_hash`): those cannot be carried over (Gatehouse digests keys with its own pepper).

Its CLI verbs are aliases of the `gatehouse` command (gateway_site/cli.py reads VERBS).
"""

import re
from urllib.parse import urlsplit

NAME, TITLE = "llm-gateway", "LLM Gateway"
PROJECT = "llm-gateway"
# Its strategies -> ModelRoute.strategy. Gatehouse always tries healthy accounts first, so health_first is the
# plain priority order; random is a weighted draw with equal weights.
STRATEGIES = {"health_first": "priority", "round_robin": "round_robin", "random": "weighted", "weighted": "weighted"}
VENDOR_ROUTES = {"anthropic": "claude-*", "openai": "gpt-*"}

# verb -> (gatehouse command, how its options become that command's arguments, what it does here)
VERBS = {
    "add-api-key": ("add_account", "--key=K --name=N [--provider=P]  ->  add_account P/N --key K (P: anthropic)",
                    "adds an API-key account to the provider's pool (the provider is made from its preset if new)"),
    "add-oauth": ("oauth_start", "--name=N [--client-id --client-secret]  ->  oauth_start anthropic/N",
                  "creates the OAuth account and prints the URL to sign in at (the client id is "
                  "GATEWAY_OAUTH_CLIENT_ID; --client-secret is not needed: PKCE)"),
    "oauth-start": ("oauth_start", "--account-id=A  ->  oauth_start A", "prints the URL to sign in at"),
    "oauth-callback": ("oauth_finish", "--code=C --account-id=A  ->  oauth_finish A C",
                       "finishes the connection with the code the sign-in page shows"),
    "list-accounts": ("list_accounts", "(its options pass through)", "lists accounts, credentials never shown"),
    "status": ("gateway_status", "(its options pass through)", "health, breakers, requests in flight, spend"),
    "health-check": ("check_providers", "(its options pass through)",
                     "probes every enabled account; exit 1 if one fails"),
}


def recognise(data) -> bool:
    return isinstance(data, dict) and "providers" not in data and (
        isinstance(data.get("accounts"), list) or isinstance(data.get("upstream_accounts"), list)
    )


def translate(data: dict) -> dict:
    timeout = (data.get("server") or {}).get("timeout_seconds") if isinstance(data.get("server"), dict) else None
    balancing = data.get("load_balancing") if isinstance(data.get("load_balancing"), dict) else {}
    strategy = STRATEGIES.get(str(balancing.get("strategy") or "health_first"), balancing.get("strategy"))
    providers, oauth = {}, []
    for i, item in enumerate(data.get("accounts") or data.get("upstream_accounts") or []):
        item = item if isinstance(item, dict) else {}
        provider = _provider(providers, item, timeout)
        name = str(item.get("id") or item.get("name") or f"account-{i + 1}")
        enabled = (item.get("status") or "active") == "active"
        if item.get("type") == "oauth":
            oauth.append({"provider": provider["name"], "name": name, "enabled": enabled,
                          **{k: item[k] for k in ("access_token", "refresh_token", "expires_at") if item.get(k)}})
        else:
            provider["accounts"].append({"name": name, "api_key": item.get("api_key") or "", "enabled": enabled})
    routes = {}
    for provider in providers.values():
        alias = VENDOR_ROUTES.get(provider["preset"], "*")
        route = routes.setdefault(alias, {"alias": alias, "strategy": strategy, "targets": []})
        route["targets"].append({"provider": provider["name"], "model": "*", "priority": len(route["targets"])})
    document = {"providers": list(providers.values()), "models": list(routes.values())}
    keys = (data.get("auth") or {}).get("api_keys") if isinstance(data.get("auth"), dict) else None
    document["inbound_keys"] = [{"project": PROJECT, "name": f"auth.api_keys[{i}]", "secret": key}
                                for i, key in enumerate(keys or [])]  # fmt: skip
    document["oauth_accounts"] = oauth
    return document


def notes(data: dict) -> list[str]:
    """What the file holds that cannot be carried over, for the import's warnings."""
    hashed = [k.get("name") or k.get("id") for k in data.get("gateway_keys") or [] if isinstance(k, dict)]
    if not hashed:
        return []
    return [f"gateway_keys ({', '.join(map(str, hashed))}): kept by LLM Gateway as hashes only, so not carried "
            f"over; issue new client keys (gatehouse create_api_key {PROJECT} --name NAME)"]


def _provider(providers: dict, item: dict, timeout) -> dict:
    vendor = str(item.get("provider") or "anthropic")
    base = str(item.get("base_url") or "").rstrip("/")
    name = vendor if not base else _slug(urlsplit(base).hostname or vendor, vendor)
    name = name if providers.get(name, {}).get("base_url", base) == base else f"{name}-{len(providers) + 1}"
    provider = providers.setdefault(name, {"name": name, "preset": vendor, "base_url": base, "accounts": []})
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        provider["read_timeout"] = timeout  # server.timeout_seconds: no upstream call outlived it there
    return provider


def _slug(text: str, fallback: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.")[:100] or fallback
