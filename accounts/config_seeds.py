"""Configurations people bring from the single-user gateways, read as they are and turned into Gatehouse's own
config document (accounts/config.py), so one validator and one writer serve every source.

    claude-proxy `config.json`      {"ak": "...", "upstream_timeout_seconds"?, "providers": [{"name"?, "base_url",
                                     "api_key", "models": [{"id", "display_name"?, "remote_id"?}]}]}
        each provider -> an OpenAI-kind provider at base_url + /v1 (claude-proxy calls
        {base_url}/v1/chat/completions; its preset guessed from the URL), each model id -> a route alias with the
        provider's remote_id as target (the same id under two providers: failover in file order), `ak` -> a
        client key with exactly that secret, in project `claude-proxy`.
    the environment                 ANTHROPIC_API_KEY [+ ANTHROPIC_BASE_URL], OPENAI_API_KEY [+ OPENAI_BASE_URL,
                                     OPENAI_MODEL, OPENAI_SMALL_MODEL], GATEWAY_API_KEY   (`start_from_env`)
        a provider per vendor key; routes sonnet / opus / haiku and claude-* (the full Claude names); with
        OpenAI also gpt-* and o1* / o3* / o4*; GATEWAY_API_KEY accepted as a client key in project `default`.

`translate(data)` recognises a seed format and returns the Gatehouse document; the client keys it names travel
in the document's `inbound_keys` and are written by `_apply_inbound_keys` (a config_applying receiver, inside
config_apply's transaction). To add a format: a recogniser and a translator here, one line in `translate`.
"""

import re
from collections import Counter
from urllib.parse import urlsplit

from . import keys
from .models import ApiKey, Project
from .presets import PRESETS
from .signals import config_applying

SEED_PROJECT = {"claude-proxy": "Imported from claude-proxy", "default": "Default"}
HOST_PRESETS = {
    "api.openai.com": "openai", "openai.azure.com": "azure_openai", "api.deepseek.com": "deepseek",
    "openrouter.ai": "openrouter", "api.groq.com": "groq", "api.mistral.ai": "mistral",
    "api.together.xyz": "together", "generativelanguage.googleapis.com": "gemini_openai",
    "api.anthropic.com": "anthropic",
}  # fmt: skip
CLAUDE_MODELS = {"sonnet": "claude-sonnet-4-5", "opus": "claude-opus-4-1", "haiku": "claude-haiku-4-5"}


def preset_for_url(url: str, default: str = "openai_compatible") -> str:
    host = (urlsplit(url).hostname or "").lower()
    return next((p for h, p in HOST_PRESETS.items() if host == h or host.endswith("." + h)), default)


def translate(data):
    """The Gatehouse config document for `data` if it is a seed format, else `data` unchanged."""
    if is_claude_proxy(data):
        return from_claude_proxy(data)
    return data


# --- claude-proxy config.json ---------------------------------------------------------------------------------


def is_claude_proxy(data) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("providers"), list):
        return False
    return "ak" in data or any(isinstance(p, dict) and "models" in p for p in data["providers"])


def from_claude_proxy(data: dict) -> dict:
    providers, routes = [], {}
    for i, item in enumerate(data["providers"]):
        item = item if isinstance(item, dict) else {}
        base_url = str(item.get("base_url") or "").rstrip("/")
        name = _slug(item.get("name") or urlsplit(base_url).hostname or "", f"provider-{i + 1}")
        providers.append(_claude_proxy_provider(item, name, base_url, data.get("upstream_timeout_seconds")))
        for model in item.get("models") or []:
            model = model if isinstance(model, dict) else {"id": model}
            alias = model.get("id")
            route = routes.setdefault(alias, {"alias": alias, "display_name": model.get("display_name") or "",
                                              "targets": []})  # fmt: skip
            route["targets"].append({"provider": name, "model": model.get("remote_id") or alias,
                                     "priority": len(route["targets"])})  # fmt: skip
    document = {"providers": providers, "models": list(routes.values())}
    if data.get("ak"):
        document["inbound_keys"] = [{"project": "claude-proxy", "name": "claude-proxy ak", "secret": data["ak"]}]
    return document


def _claude_proxy_provider(item: dict, name: str, base_url: str, timeout) -> dict:
    """claude-proxy calls `{base_url}/v1/chat/completions` with a Bearer key, whatever the host (its README), and
    an OpenAI-kind provider here calls `{base_url}/chat/completions`: the provider's base URL is base_url + /v1,
    exactly as claude-proxy builds it (a base_url already ending in /v1 is doubled there, so it is here)."""
    preset = PRESETS[preset_for_url(base_url)]
    if preset.kind != "openai" or preset.capabilities.auth != "bearer":  # api.anthropic.com, Azure: claude-proxy
        preset = PRESETS["openai_compatible"]  # speaks Chat Completions with a Bearer key to them too
    provider = {"name": name, "preset": preset.name, "kind": "openai",
                "base_url": f"{base_url}/v1" if base_url else None, "api_key": item.get("api_key", "")}  # fmt: skip
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        provider["read_timeout"] = timeout  # upstream_timeout_seconds, claude-proxy's only upstream setting
    if item.get("enabled") is False:
        provider["enabled"] = False
    return provider


def _slug(text: str, fallback: str) -> str:
    text = re.sub(r"^api\.|\.(com|ai|xyz|io)$", "", str(text).lower())
    text = re.sub(r"[^a-z0-9_.-]+", "-", text).strip("-.")
    return text[:100] or fallback


# --- the environment --------------------------------------------------------------------------------------------


def from_environment(environ) -> dict | None:
    """The Gatehouse document the environment describes, or None when it names no upstream key."""
    anthropic, openai = environ.get("ANTHROPIC_API_KEY"), environ.get("OPENAI_API_KEY")
    if not (anthropic or openai):
        return None
    providers, models = [], []
    if anthropic:
        base = environ.get("ANTHROPIC_BASE_URL") or PRESETS["anthropic"].base_url
        providers.append({"name": "anthropic", "preset": preset_for_url(base, "anthropic"), "kind": "anthropic",
                          "base_url": base, "api_key_env": "ANTHROPIC_API_KEY"})  # fmt: skip
        models += [_route(alias, "anthropic", model) for alias, model in CLAUDE_MODELS.items()]
        models.append(_route("claude-*", "anthropic", "*"))
    if openai:
        base = environ.get("OPENAI_BASE_URL") or PRESETS["openai"].base_url
        providers.append({"name": "openai", "preset": preset_for_url(base), "kind": "openai", "base_url": base,
                          "api_key_env": "OPENAI_API_KEY"})  # fmt: skip
        big = environ.get("OPENAI_MODEL") or "gpt-4o"
        small = environ.get("OPENAI_SMALL_MODEL") or (big if environ.get("OPENAI_MODEL") else "gpt-4o-mini")
        models += [_route(alias, "openai", "*") for alias in ("gpt-*", "o1*", "o3*", "o4*")]
        if not anthropic:  # Claude Code's names go to the OpenAI-compatible upstream
            models += [_route("sonnet", "openai", big), _route("opus", "openai", big), _route("haiku", "openai", small),
                       _route("claude-*haiku*", "openai", small), _route("claude-*", "openai", big)]  # fmt: skip
    document = {"providers": providers, "models": models}
    if environ.get("GATEWAY_API_KEY"):
        document["inbound_keys"] = [{"project": "default", "name": "GATEWAY_API_KEY",
                                     "secret": environ["GATEWAY_API_KEY"]}]  # fmt: skip
    return document


def _route(alias: str, provider: str, model: str) -> dict:
    return {"alias": alias, "targets": [{"provider": provider, "model": model}]}


def describe(document: dict) -> list[str]:
    """What the environment's document makes, one line per object, for start_from_env to print."""
    lines = [f"  provider {p['name']}: {p['base_url']} (preset {p['preset']}, key from {p['api_key_env']})"
             for p in document.get("providers", [])]  # fmt: skip
    for route in document.get("models", []):
        target = route["targets"][0]
        model = "the model asked for" if target["model"] == "*" else target["model"]
        lines.append(f"  route {route['alias']} -> {target['provider']}, {model}")
    lines += [f"  client key {k['name']} in project {k['project']}" for k in document.get("inbound_keys", [])]
    return lines


ENVIRONMENT_PROVIDERS = ("anthropic", "openai")  # the names from_environment gives its providers


def left_by_environment(path: str) -> list[str]:
    """Routes an environment-only start made (their alias is one of its aliases, every target on one of its
    providers) that the config file at `path` does not name: they still take requests beside the file's."""
    from .config import ConfigError, config_read
    from .models import ModelRoute

    try:
        named = {m.get("alias") for m in translate(config_read(path)).get("models") or [] if isinstance(m, dict)}
    except (ConfigError, AttributeError):
        return []  # a bad file is reported when it is applied (bootstrap, apply_config)
    aliases = {route["alias"] for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
               for route in from_environment({key: "-"})["models"]}  # fmt: skip
    found = []
    for route in ModelRoute.objects.filter(alias__in=aliases - named).prefetch_related("targets__provider"):
        providers = {t.provider.name for t in route.targets.all()}
        if providers and providers <= set(ENVIRONMENT_PROVIDERS):
            found.append(route.alias)
    return sorted(found)


# --- client keys with a given secret ----------------------------------------------------------------------------

MIN_SECRET_LENGTH = 8


def inbound_key_problems(items) -> list[str]:
    problems = []
    for i, item in enumerate(items or []):
        secret = item.get("secret") if isinstance(item, dict) else None
        if not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET_LENGTH:
            problems.append(f"inbound_keys[{i}]: a client key needs at least {MIN_SECRET_LENGTH} characters")
    return problems


def _apply_inbound_keys(sender, config, counts, upsert, **kwargs) -> None:
    """Each key: created once in its project (made if missing); the same secret again changes nothing."""
    for item in getattr(config, "inbound_keys", None) or []:
        slug, secret = item["project"], item["secret"].strip()
        project = Project.objects.filter(slug=slug).first() or Project.objects.create(
            slug=slug, name=SEED_PROJECT.get(slug, slug)
        )
        tally = counts.setdefault("keys", Counter())
        prefix, secret_digest = secret[: keys.PREFIX_LENGTH], keys.digest(secret)
        existing = ApiKey.objects.filter(prefix=prefix).first()
        if existing is not None and existing.digest == secret_digest:
            tally["unchanged"] += 1
            continue
        if existing is not None:
            from .config import ConfigError

            raise ConfigError([f"inbound key {item['name']!r}: another key already starts with {prefix!r}"])
        ApiKey.objects.create(project=project, name=item["name"], prefix=prefix, digest=secret_digest)
        tally["created"] += 1


config_applying.connect(_apply_inbound_keys, dispatch_uid="accounts.config_seeds.inbound_keys")
