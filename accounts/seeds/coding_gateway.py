"""The Coding Gateway (OpenAI Chat Completions in, Claude out; FastAPI, configured by environment).

Its model names: `sonnet`-like names go to DEFAULT_MODEL, `opus`-like ones to OPUS_MODEL, `claude-*` ids pass
through, anything else gets DEFAULT_MODEL; a client may put MODEL_PREFIX (`MYMODEL:` or `MYMODEL-`) before any of
them. Its token-reduction, smart-routing and rate-limit switches are project options here (the `default`
project the environment start makes), its reliability numbers Gatehouse settings.
"""

from .common import SKIP, Var, as_flag, seconds, when, whole

NAME, TITLE = "coding-gateway", "Coding Gateway"
PROVIDER = "anthropic"  # the provider config_seeds.from_environment makes from ANTHROPIC_API_KEY


def _whole(minimum=0):
    return lambda raw, environ: whole(raw, minimum)


def _on_off(raw, environ):
    return as_flag(raw, environ)


def _threshold(raw, environ):
    """Its score is 0..1 (about 0.1 per keyword); Gatehouse's counts 2 per keyword (default 5 = its 0.5)."""
    return max(1, round(seconds(raw) * 10))


def _rpm(raw, environ):
    return whole(environ.get("RATE_LIMIT_RPM") or "60", 1) if as_flag(raw, environ) else None


def _prune(raw, environ):
    return whole(environ.get("CONTEXT_MAX_TOKENS") or "100000", 1000) if as_flag(raw, environ) else None


def _off_means(value):
    return lambda raw, environ: SKIP if as_flag(raw, environ) else value


def _routed(raw, environ):
    return "opus" if as_flag(raw, environ) else ""


def _backoff_ms(raw, environ):
    return int(seconds(raw) * 1000)


OPT = "optimize."
VARIABLES = (
    Var("ANTHROPIC_API_KEY", "provider anthropic (api.anthropic.com, or ANTHROPIC_BASE_URL)", "same", secret=True),
    Var("GATEWAY_API_KEY", "a client key with this secret in project default", "same", secret=True),
    Var("REDIS_URL", "read as it is: shared cache, limits, breakers and the Celery broker", "same", secret=True),
    Var("DATABASE_URL", "read as it is (a postgresql+asyncpg:// URL is read as postgresql://)", "same", secret=True),
    Var("DEFAULT_MODEL", "route sonnet's model, and route * (any other name) to it"),
    Var("OPUS_MODEL", "route opus's model (smart routing's complex requests go there)"),
    Var("MODEL_PREFIX", "routes PREFIXsonnet, PREFIXopus, PREFIX + each model, PREFIX* (and with - for :)"),
    Var("UPSTREAM_TIMEOUT_SECONDS", "provider anthropic's read timeout"),
    Var("CACHE_TTL_SECONDS", "project default: response cache TTL (deterministic requests)", "project",
        field=OPT + "response_cache_ttl", convert=_whole()),
    Var("ADMIN_API_KEY", "setting GATEWAY_ADMIN_API_KEY: the key of the /admin/* JSON endpoints", "setting",
        setting="GATEWAY_ADMIN_API_KEY", secret=True),
    Var("STRIP_IDE_BOILERPLATE", "project default: strip IDE boilerplate", "project",
        field=OPT + "strip_boilerplate", convert=_on_off),
    Var("ENFORCE_DIFF_FIRST", "project default: diff-first instruction", "project", field=OPT + "diff_first",
        convert=_on_off),
    Var("ENABLE_ANTHROPIC_CACHE_CONTROL", "project default: prompt-cache breakpoints", "project",
        field=OPT + "cache_breakpoints", convert=_on_off),
    Var("SYSTEM_MAX_CHARS", "project default: cap system prompt (chars)", "project", field=OPT + "cap_system_chars",
        convert=_whole(1)),
    Var("USER_MSG_MAX_CHARS", "project default: cap user message (chars)", "project",
        field=OPT + "cap_message_chars", convert=_whole(1)),
    Var("TOOL_RESULT_MAX_CHARS", "project default: cap tool result (chars)", "project",
        field=OPT + "cap_tool_result_chars", convert=_whole(1)),
    Var("DEFAULT_MAX_TOKENS", "setting GATEWAY_DEFAULT_MAX_TOKENS (max_tokens when the client sends none)",
        "setting", setting="GATEWAY_DEFAULT_MAX_TOKENS", convert=_whole(1)),
    Var("ENABLE_FILE_HASH_CACHE", "project default: de-duplicate tool results", "project",
        field=OPT + "dedupe_tool_results", convert=_on_off),
    Var("FILE_HASH_CACHE_TTL", "no counterpart: repeated file content is found within the conversation", "none"),
    Var("ENABLE_CONTEXT_PRUNING", "project default: context ceiling = CONTEXT_MAX_TOKENS (100000 if unset)",
        "project", field=OPT + "prune_max_tokens", convert=_prune),
    Var("CONTEXT_MAX_TOKENS", "project default: context ceiling (tokens), unless ENABLE_CONTEXT_PRUNING=0",
        "project", field=OPT + "prune_max_tokens",
        convert=when("ENABLE_CONTEXT_PRUNING", True, lambda raw: whole(raw, 1000))),
    Var("ENABLE_SMART_ROUTING", "project default: smart routing sends complex requests to route opus", "project",
        field=OPT + "route_complex", convert=_routed),
    Var("OPUS_ROUTING_THRESHOLD", "project default: complexity threshold = round(value x 10)", "project",
        field=OPT + "complexity_threshold", convert=_threshold),
    Var("RATE_LIMIT_ENABLED", "project default: requests/min = RATE_LIMIT_RPM (60 if unset); 0: no limit",
        "project", field="rpm", convert=_rpm),
    Var("RATE_LIMIT_RPM", "project default: requests/min, unless RATE_LIMIT_ENABLED=0", "project", field="rpm",
        convert=when("RATE_LIMIT_ENABLED", True, lambda r: whole(r, 1))),
    Var("CIRCUIT_BREAKER_THRESHOLD", "setting GATEWAY_BREAKER_THRESHOLD (failures that open an account's breaker)",
        "setting", setting="GATEWAY_BREAKER_THRESHOLD", convert=_whole()),
    Var("CIRCUIT_BREAKER_TIMEOUT", "setting GATEWAY_BREAKER_COOLDOWN_SECONDS", "setting",
        setting="GATEWAY_BREAKER_COOLDOWN_SECONDS", convert=lambda raw, environ: seconds(raw)),
    Var("CIRCUIT_BREAKER_ENABLED", "0: setting GATEWAY_BREAKER_THRESHOLD=0 (breakers off)", "setting",
        setting="GATEWAY_BREAKER_THRESHOLD", convert=_off_means(0)),
    Var("RETRY_MAX_ATTEMPTS", "setting GATEWAY_RETRY_MAX_ATTEMPTS", "setting", setting="GATEWAY_RETRY_MAX_ATTEMPTS",
        convert=_whole(1)),
    Var("RETRY_BACKOFF_BASE", "setting GATEWAY_RETRY_BASE_MS (seconds x 1000)", "setting",
        setting="GATEWAY_RETRY_BASE_MS", convert=_backoff_ms),
    Var("RETRY_ENABLED", "0: setting GATEWAY_RETRY_MAX_ATTEMPTS=1 (no retry)", "setting",
        setting="GATEWAY_RETRY_MAX_ATTEMPTS", convert=_off_means(1)),
    Var("PROMETHEUS_ENABLED", "always on: GET /metrics (METRICS_TOKEN) and /admin/metrics", "always", is_flag=True),
    Var("ENABLE_BATCH_API", "always on: /v1/batches and /v1/messages/batches", "always", is_flag=True),
    Var("ENABLE_MULTI_PROJECT", "projects are always there, each with its own keys, limits and options; this "
        "start uses one, default", "info", is_flag=True),
    Var("ORIGIN_SECRET", "no counterpart yet (origin lockdown)", "none", secret=True),
    Var("REQUIRE_CF_ACCESS_HEADERS", "no counterpart yet (origin lockdown)", "none", is_flag=True),
    Var("ENABLE_REPO_MAP", "no counterpart", "none", is_flag=True),
    Var("ENABLE_MEMORY_LAYER", "no counterpart", "none", is_flag=True),
    Var("ENABLE_PLUGIN_TOOLS", "no counterpart", "none", is_flag=True),
    Var("EMBEDDING_API_URL", "no counterpart (the memory layer's)", "none"),
    Var("EMBEDDING_API_KEY", "no counterpart (the memory layer's)", "none", secret=True),
    Var("EMBEDDING_MODEL", "no counterpart (the memory layer's)", "none"),
)  # fmt: skip


def _route(document: dict, alias: str) -> dict | None:
    return next((r for r in document.get("models", []) if r.get("alias") == alias), None)


def _add_route(document: dict, alias: str, model: str) -> None:
    route = _route(document, alias)
    if route is None:
        document.setdefault("models", []).append({"alias": alias, "targets": [{"provider": PROVIDER, "model": model}]})
    else:
        route["targets"] = [{"provider": PROVIDER, "model": model}]


def amend(environ, document: dict) -> list[str]:
    """Routes from DEFAULT_MODEL, OPUS_MODEL and MODEL_PREFIX; the provider's timeout. Only with an Anthropic
    provider (ANTHROPIC_API_KEY), the Coding Gateway's only upstream."""
    provider = next((p for p in document.get("providers", []) if p["name"] == PROVIDER), None)
    if provider is None:
        return []
    problems = []
    default, opus = environ.get("DEFAULT_MODEL", "").strip(), environ.get("OPUS_MODEL", "").strip()
    if default:
        _add_route(document, "sonnet", default)
        _add_route(document, "*", default)  # its answer to any name it does not know
    if opus:
        _add_route(document, "opus", opus)
    if prefix := environ.get("MODEL_PREFIX", "").strip():
        for head in dict.fromkeys((prefix, prefix.rstrip(":") + "-")):
            for alias, model in (("sonnet", default or "*"), ("opus", opus or "*")):
                route = _route(document, alias)
                _add_route(document, head + alias, route["targets"][0]["model"] if route else model)
            for model in filter(None, (default, opus)):
                _add_route(document, head + model, model)
            _add_route(document, head + "*", default or _route(document, "sonnet")["targets"][0]["model"])
    if timeout := environ.get("UPSTREAM_TIMEOUT_SECONDS", "").strip():
        try:
            provider["read_timeout"] = seconds(timeout)
        except ValueError as e:
            problems.append(f"UPSTREAM_TIMEOUT_SECONDS={timeout!r}: {e}")
    return problems
