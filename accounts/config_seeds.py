"""Configurations people bring from the single-user gateways, read as they are and turned into Gatehouse's own
config document (accounts/config.py), so one validator and one writer serve every source. Each gateway's mapping
lives in accounts/seeds (one module each, with its table); this module holds claude-proxy's translator, the
environment start's base document and the writers for what a config document cannot say by itself.

    claude-proxy `config.json`      {"ak": "...", "upstream_timeout_seconds"?, "providers": [{"name"?, "base_url",
                                     "api_key", "models": [{"id", "display_name"?, "remote_id"?}]}]}
        each provider -> an OpenAI-kind provider calling {base_url}/v1/chat/completions as claude-proxy does (a
        base_url that already ends in /v1 is not given a second one; its preset guessed from the URL), each model
        id -> a route alias with the provider's remote_id as target (the same id under two providers: failover
        in file order), `ak` -> a client key with exactly that secret, in project `claude-proxy`.
    LLM Gateway `config.yaml`       accounts/seeds/llm_gateway.py
    the environment                 ANTHROPIC_API_KEY [+ ANTHROPIC_BASE_URL], OPENAI_API_KEY [+ OPENAI_BASE_URL,
                                     OPENAI_MODEL, OPENAI_SMALL_MODEL], GATEWAY_API_KEY   (`start_from_env`)
        a provider per vendor key; routes sonnet / opus / haiku and claude-* (the full Claude names); with
        OpenAI also gpt-* and o1* / o3* / o4*; GATEWAY_API_KEY accepted as a client key in project `default`.
        The seeds' variables (GATEWAY_TOKEN, MODEL_MAP, the Coding Gateway's) amend it: accounts/seeds.

`translate(data)` recognises a seed format and returns the Gatehouse document; the client keys it names travel
in the document's `inbound_keys` and are written by `_apply_inbound_keys`, OAuth accounts with their tokens in
`oauth_accounts` by `_apply_oauth_accounts` (config_applying receivers, inside config_apply's transaction).
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
    return translate_noting(data)[0]


def translate_noting(data) -> tuple[dict, list[str]]:
    """The document, and warnings: which seed's format it was read as, and what it holds that cannot be carried."""
    from . import seeds

    document, name = seeds.file_translate(data)
    if name is None:
        return data, []
    notes = [f"read as a {name} configuration (docs/coming-from.md)"]
    return document, notes + getattr(seeds.SEEDS[name], "notes", lambda data: [])(data)


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
    an OpenAI-kind provider here calls `{base_url}/chat/completions`: the provider's base URL is base_url + /v1.
    A base_url already ending in /v1 (written the way OpenAI SDKs take it) keeps its one /v1: claude-proxy would
    call .../v1/v1/chat/completions, which no upstream serves, so that file never worked as written."""
    preset = PRESETS[preset_for_url(base_url)]
    if preset.kind != "openai" or preset.capabilities.auth != "bearer":  # api.anthropic.com, Azure: claude-proxy
        preset = PRESETS["openai_compatible"]  # speaks Chat Completions with a Bearer key to them too
    provider = {"name": name, "preset": preset.name, "kind": "openai",
                "base_url": _with_v1(base_url), "api_key": item.get("api_key", "")}  # fmt: skip
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        provider["read_timeout"] = timeout  # upstream_timeout_seconds, claude-proxy's only upstream setting
    if item.get("enabled") is False:
        provider["enabled"] = False
    return provider


def _with_v1(base_url: str) -> str | None:
    if not base_url:
        return None
    return base_url if base_url.endswith("/v1") else f"{base_url}/v1"


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
    """What a document makes, one line per object (secrets never shown), for start_from_env and migrate_from."""
    lines = []
    for p in document.get("providers", []):
        accounts = p.get("accounts") or []
        key = f"key from {p['api_key_env']}" if p.get("api_key_env") else f"{len(accounts)} account(s)"
        timeout = f", read timeout {p['read_timeout']} s" if p.get("read_timeout") else ""
        lines.append(f"  provider {p['name']}: {p.get('base_url') or 'the preset URL'} (preset {p['preset']}, {key}"
                     f"{timeout})")  # fmt: skip
        lines += [f"    account {a['name']}{'' if a.get('enabled', True) else ' (disabled)'}" for a in accounts]
    for a in document.get("oauth_accounts") or []:
        state = "tokens carried over" if a.get("access_token") else "to connect (oauth_start)"
        lines.append(f"  oauth account {a['provider']}/{a['name']}: {state}")
    for route in document.get("models", []):
        targets = "; ".join(f"{t['provider']}, {'the model asked for' if t['model'] == '*' else t['model']}"
                            for t in route["targets"])  # fmt: skip
        strategy = f" [{route['strategy']}]" if route.get("strategy", "priority") != "priority" else ""
        lines.append(f"  route {route['alias']} -> {targets}{strategy}")
    lines += [f"  client key {k['name']} in project {k['project']}" for k in document.get("inbound_keys", [])]
    for project in document.get("projects", []):
        options = [f"{k}={v}" for k, v in project.items() if k not in ("slug", "name", "optimize")]
        options += [f"optimize.{k}={v!r}" for k, v in (project.get("optimize") or {}).items()]
        lines.append(f"  project {project['slug']}: {', '.join(options) or 'as it is'}")
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


# --- OAuth accounts with their tokens (LLM Gateway's config.yaml) ------------------------------------------------


def _apply_oauth_accounts(sender, config, counts, **kwargs) -> None:
    """Each: an Anthropic OAuth account of its provider, holding the file's tokens (so nobody signs in again);
    one without tokens waits, disabled, for `oauth_start`. The same tokens again change nothing."""
    from datetime import datetime

    from django.utils import timezone

    from . import oauth
    from .models import Provider, ProviderAccount

    for i, item in enumerate(getattr(config, "oauth_accounts", None) or []):
        provider = Provider.objects.filter(name=item.get("provider")).first()
        if provider is None or provider.kind != "anthropic":
            from .config import ConfigError

            raise ConfigError([f"oauth_accounts[{i}].provider: not an Anthropic provider: {item.get('provider')!r}"])
        account, created = ProviderAccount.objects.get_or_create(
            provider=provider, name=item["name"], defaults={"kind": "anthropic_oauth", "enabled": False}
        )
        state = "created" if created else "unchanged"
        access = item.get("access_token")
        if access and not _holds(account, access):
            expires = item.get("expires_at")
            expires = datetime.fromisoformat(str(expires).replace("Z", "+00:00")) if expires else timezone.now()
            seconds = max(0.0, (expires - timezone.now()).total_seconds())  # past: refreshed on first use
            oauth._store(account, oauth.Tokens(access, item.get("refresh_token"), seconds))  # noqa: SLF001
            account.enabled = bool(item.get("enabled", True))
            account.save(update_fields=["enabled"])
            state = state if created else "updated"
        counts.setdefault("accounts", Counter())[state] += 1


def _holds(account, token: str) -> bool:
    try:
        return bool(account.credential_encrypted) and account.credential == token
    except ValueError:
        return False


config_applying.connect(_apply_oauth_accounts, dispatch_uid="accounts.config_seeds.oauth_accounts")
