"""The YAML config file read by `apply_config` and `bootstrap`: parsing and validation only, no writes.

A seed format (claude-proxy's config.json, LLM Gateway's config.yaml; accounts/seeds) is translated to this document
first.
`config_parse(data)` checks the whole document first and raises ConfigError listing every problem, each named by
its path (`models[1].targets[0].provider: unknown provider 'nope'`), so a bad file changes nothing. `${VAR}` in any
string value expands from the environment. Credentials come from `api_key_env: NAME` (preferred) or `api_key:`.
"""

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import yaml
from django.core.exceptions import ValidationError

from . import config_seeds, fields, presets, self_address
from .fields import type_name
from .models import ModelRoute, Provider
from .presets import PRESETS, capability_problems, preset_for, preset_kind_problem

KINDS = list(presets.KINDS)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MISSING = object()


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class AccountSpec:
    name: str
    credential: str | None  # None: keep whatever the account has
    weight: int = 1
    priority: int = 0
    enabled: bool = True


@dataclass
class ProviderSpec:
    name: str
    kind: str
    base_url: str
    preset: str = ""
    capabilities: dict = field(default_factory=dict)
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    extra_headers: dict = field(default_factory=dict)
    enabled: bool = True
    accounts: list[AccountSpec] = field(default_factory=list)


@dataclass
class TargetSpec:
    provider: str
    model: str
    priority: int = 0
    weight: int = 1


@dataclass
class RouteSpec:
    alias: str
    display_name: str = ""
    enabled: bool = True
    default_max_tokens: int | None = None
    max_output_tokens: int | None = None
    strategy: str = "priority"
    retry_max_attempts: int | None = None
    retry_base_ms: int | None = None
    retry_cap_ms: int | None = None
    retry_deadline_seconds: float | None = None
    response_cache_ttl: int | None = None
    on_all_open: str = ""  # "" = GATEWAY_BREAKER_ON_ALL_OPEN
    targets: list[TargetSpec] = field(default_factory=list)


@dataclass
class PriceSpec:
    model: str
    effective_from: date | None  # None: today, unless the current price already matches
    # The number fields of usage.ModelPrice by name (rates, batch discount, the long-context tier): the model
    # declares them and their rules once; the file, the catalogue, the API and the admin all read that.
    numbers: dict = field(default_factory=dict)


@dataclass
class ProjectSpec:
    slug: str
    name: str
    active: bool = True
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    monthly_budget_usd: Decimal | None = None
    daily_budget_usd: Decimal | None = None
    budget_alert_percent: int = 80
    allowed_models: list[str] = field(default_factory=list)
    optimize: dict | None = None  # ProjectOptimization field values; None = leave the project's settings alone
    redaction: dict | None = None  # ProjectRedaction field values; None = leave the project's rules alone
    request_logs: dict | None = None  # Project.request_log_* values (REQUEST_LOG_FIELDS); None = leave them alone


# What the file writes: with GATEWAY_CONFIG set, every start (bin/run -> bootstrap) applies the file again, and for
# each object the file names these fields go back to the file's values (accounts/services.py `_apply` writes
# exactly these, from the spec attributes of the same names). Objects the file does not name, and other fields,
# are the admin's; accounts/admin_config.py shows the owned fields on each owned object.
FILE_OWNED_FIELDS = {
    "provider": ("kind", "base_url", "preset", "capabilities", "connect_timeout", "read_timeout", "extra_headers",
                 "enabled"),
    "provideraccount": ("weight", "priority", "enabled", "credential"),
    "modelroute": ("display_name", "enabled", "default_max_tokens", "max_output_tokens", "strategy",
                   "retry_max_attempts", "retry_base_ms", "retry_cap_ms", "retry_deadline_seconds", "response_cache_ttl",
                   "on_all_open",
                   "targets"),
    "project": ("name", "active", "rpm_limit", "tpm_limit", "monthly_budget_usd", "daily_budget_usd",
                "budget_alert_percent", "allowed_models"),
}  # fmt: skip


@dataclass
class Config:
    providers: list[ProviderSpec] = field(default_factory=list)
    models: list[RouteSpec] = field(default_factory=list)
    prices: list[PriceSpec] = field(default_factory=list)
    projects: list[ProjectSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inbound_keys: list[dict] = field(default_factory=list)  # client keys with given secrets (config_seeds)
    oauth_accounts: list[dict] = field(default_factory=list)  # OAuth accounts with their tokens (config_seeds)


def config_read(path) -> dict:
    """The file's YAML as a mapping; a syntax error becomes a ConfigError naming the line."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{path}: YAML syntax error{where}: {getattr(e, 'problem', None) or e}"]) from None
    return {} if data is None else data


class _Reader:
    """Walks the document once, collecting every problem instead of stopping at the first."""

    def __init__(self, environ, known_providers):
        self.environ = environ
        self.known_providers = set(known_providers)
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fail(self, path: str, message: str):
        self.problems.append(f"{path or '(top level)'}: {message}")

    def expand(self, value, path):
        if not isinstance(value, str):
            return value

        def substitute(match):
            name = match.group(1)
            if name not in self.environ:
                self.fail(path, f"environment variable {name} is not set (the file says ${{{name}}})")
                return ""
            return self.environ[name]

        return _VAR.sub(substitute, value)

    def mapping(self, value, path, allowed: set[str]) -> dict | None:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {type_name(value)}")
            return None
        for key in value:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                self.fail(_join(path, key), f"unknown field (expected one of: {expected})")
        return value

    def each(self, items: list, path: str, allowed):
        """(`path`[i], item) for each item of the list that is a mapping of `allowed` keys (others are reported)."""
        for i, item in enumerate(items):
            where = f"{path}[{i}]"
            if self.mapping(item, where, allowed) is not None:
                yield where, item

    def items(self, data: dict, key: str, path: str) -> list:
        value = data.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(_join(path, key), f"expected a list, got {type_name(value)}")
            return []
        return value

    def string(self, data, key, path, default=_MISSING, *, model_field=None, max_length=200):
        """A string; with `model_field`, checked by that field's validators (its length, its pattern)."""
        where = _join(path, key)
        value = data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                self.fail(where, "required")
                return ""
            return default
        if not isinstance(value, str):
            self.fail(where, f"expected a string, got {type_name(value)}")
            return ""
        value = self.expand(value, where).strip()
        if default is _MISSING and not value:
            self.fail(where, "must not be empty")
        elif model_field is not None:
            try:
                model_field.run_validators(value)
            except ValidationError as e:
                self.fail(where, f"{value!r}: {' '.join(e.messages)}")
        elif len(value) > max_length:
            self.fail(where, f"at most {max_length} characters")
        return value

    def boolean(self, data, key, path, default: bool) -> bool:
        value = data.get(key, default)
        if isinstance(value, str) and "${" in value:
            value = {"true": True, "false": False}.get(self.expand(value, _join(path, key)).lower(), value)
        if not isinstance(value, bool):
            self.fail(_join(path, key), f"expected true or false, got {type_name(value)}")
            return default
        return value

    def number(self, data, key, path, default, model_field):
        """The value of `key` for `model_field` (accounts/fields.py: the field's type and validators are the
        rule, as in the admin and in full_clean)."""
        where = _join(path, key)
        value = data.get(key, default)
        if value is None:
            return None
        if isinstance(value, str) and "${" in value:
            value = self.expand(value, where)
        try:
            return fields.number(model_field, value)
        except fields.FieldProblem as problem:
            self.fail(where, str(problem))
            return default

    def credential(self, data, path) -> str | None:
        if "api_key_env" in data and "api_key" in data:
            self.fail(path, "give api_key_env or api_key, not both")
            return None
        if "api_key_env" in data:
            name = self.string(data, "api_key_env", path)
            if name and not self.environ.get(name):
                self.fail(_join(path, "api_key_env"), f"environment variable {name} is not set")
            return self.environ.get(name) if name else None
        if "api_key" in data:
            if "${" not in str(data["api_key"]):
                self.warnings.append(
                    f"{_join(path, 'api_key')}: a credential written in the file; prefer api_key_env: VARIABLE_NAME"
                )
            return self.string(data, "api_key", path, default="", max_length=10_000)
        return None


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


PROVIDER_FIELDS = {"name", "preset", "capabilities", "kind", "base_url", "api_key_env", "api_key", "accounts", "connect_timeout",
                   "read_timeout", "extra_headers", "enabled"}  # fmt: skip
ACCOUNT_FIELDS = {"name", "api_key_env", "api_key", "weight", "priority", "enabled"}
ROUTE_FIELDS = {"alias", "display_name", "enabled", "default_max_tokens", "max_output_tokens", "targets", "strategy",
                "retry", "response_cache_ttl", "on_all_open"}  # fmt: skip
RETRY_FIELDS = ("max_attempts", "base_ms", "cap_ms", "deadline_seconds")  # ModelRoute.retry_<name>
STRATEGIES = tuple(value for value, _ in ModelRoute.STRATEGY_CHOICES)
ON_ALL_OPEN = tuple(value for value, _ in ModelRoute.ON_ALL_OPEN_CHOICES if value)
ROUTE, PROJECT, PRICE = "accounts.ModelRoute", "accounts.Project", "usage.ModelPrice"
_f = fields.field
TARGET_FIELDS = {"provider", "model", "priority", "weight"}
PROJECT_FIELDS = {"slug", "name", "active", "rpm", "tpm", "monthly_budget_usd", "daily_budget_usd",
                  "budget_alert_percent", "allowed_models", "optimize", "redaction", "request_logs"}  # fmt: skip
# `projects[].request_logs:` key -> the Project field that stores it (its type and validators are the rule).
REQUEST_LOG_FIELDS = {"mode": "request_log_mode", "retention_days": "request_log_retention_days",
                      "max_bytes": "request_log_max_bytes"}  # fmt: skip


def config_parse(data, *, environ, known_providers=()) -> Config:
    """Validate the whole document. `known_providers`: names already in the database, which routes may use."""
    r = _Reader(environ, known_providers)
    config = Config()
    data, seed_notes = config_seeds.translate_noting(data)
    if r.mapping(data, "", {"providers", "models", "prices", "projects", "inbound_keys", "oauth_accounts"}) is None:
        raise ConfigError(r.problems)
    r.warnings.extend(seed_notes)
    r.problems.extend(config_seeds.inbound_key_problems(r.items(data, "inbound_keys", "")))
    config.inbound_keys = r.items(data, "inbound_keys", "")
    config.oauth_accounts = r.items(data, "oauth_accounts", "")

    _providers(r, r.items(data, "providers", ""), config)
    _routes(r, r.items(data, "models", ""), config)
    _prices(r, r.items(data, "prices", ""), config)
    _projects(r, r.items(data, "projects", ""), config)
    if r.problems:
        raise ConfigError(r.problems)
    config.warnings = r.warnings
    return config


def _providers(r: _Reader, items: list, config: Config) -> None:
    for path, item in r.each(items, "providers", PROVIDER_FIELDS):
        provider = ProviderSpec(
            name=r.string(item, "name", path, model_field=_f("accounts.Provider", "name")),
            preset=r.string(item, "preset", path, ""),
            kind=r.string(item, "kind", path, "" if item.get("preset") else _MISSING),
            base_url=r.string(item, "base_url", path, "" if item.get("preset") else _MISSING, max_length=500),
            capabilities=_capabilities(r, item, path),
            connect_timeout=r.number(item, "connect_timeout", path, 10.0, _f("accounts.Provider", "connect_timeout")),
            read_timeout=r.number(item, "read_timeout", path, 600.0, _f("accounts.Provider", "read_timeout")),
            extra_headers=_headers(r, item, path),
            enabled=r.boolean(item, "enabled", path, True),
        )
        if provider.kind and provider.kind not in KINDS:
            r.fail(f"{path}.kind", f"invalid kind {provider.kind!r} (expected one of: {', '.join(KINDS)})")
        _fill_from_preset(r, provider, path)
        if provider.base_url:
            try:
                for validate in Provider._meta.get_field("base_url").validators:
                    validate(provider.base_url)
            except ValidationError:
                r.fail(f"{path}.base_url", f"not an http(s) URL: {provider.base_url!r}")
            if loop := self_address.warning(provider.name, provider.base_url):
                r.warnings.append(f"{path}.base_url: {loop}")
        if provider.name in {p.name for p in config.providers}:
            r.fail(f"{path}.name", f"duplicate provider {provider.name!r}")
        if "accounts" in item and ("api_key_env" in item or "api_key" in item):
            r.fail(path, "give either api_key_env/api_key (one account named 'default') or accounts, not both")
        elif "api_key_env" in item or "api_key" in item:
            provider.accounts.append(AccountSpec(name="default", credential=r.credential(item, path)))
        _accounts(r, r.items(item, "accounts", path), path, provider)
        config.providers.append(provider)


def _routes(r: _Reader, items: list, config: Config) -> None:
    providers = r.known_providers | {p.name for p in config.providers}
    for path, item in r.each(items, "models", ROUTE_FIELDS):
        route = RouteSpec(
            alias=r.string(item, "alias", path),
            display_name=r.string(item, "display_name", path, ""),
            enabled=r.boolean(item, "enabled", path, True),
            default_max_tokens=r.number(item, "default_max_tokens", path, None, _f(ROUTE, "default_max_tokens")),
            max_output_tokens=r.number(item, "max_output_tokens", path, None, _f(ROUTE, "max_output_tokens")),
            strategy=r.string(item, "strategy", path, "priority"),
            response_cache_ttl=r.number(item, "response_cache_ttl", path, None, _f(ROUTE, "response_cache_ttl")),
            on_all_open=r.string(item, "on_all_open", path, ""),
        )
        if route.strategy not in STRATEGIES:
            r.fail(f"{path}.strategy", f"invalid strategy {route.strategy!r} (expected one of: {', '.join(STRATEGIES)})")
        if route.on_all_open not in ("", *ON_ALL_OPEN):
            r.fail(f"{path}.on_all_open", f"invalid value {route.on_all_open!r} (expected one of: {', '.join(ON_ALL_OPEN)})")
        retry = item.get("retry")
        if retry is not None and r.mapping(retry, f"{path}.retry", RETRY_FIELDS) is not None:
            for name in RETRY_FIELDS:
                field_name = f"retry_{name}"
                setattr(route, field_name, r.number(retry, name, f"{path}.retry", None, _f(ROUTE, field_name)))
        if route.alias in {m.alias for m in config.models}:
            r.fail(f"{path}.alias", f"duplicate model alias {route.alias!r}")
        if "targets" not in item:
            r.fail(f"{path}.targets", "required (a list of {provider, model})")
        _targets(r, r.items(item, "targets", path), path, route, providers)
        config.models.append(route)


def _accounts(r: _Reader, items: list, path: str, provider: ProviderSpec) -> None:
    for apath, account in r.each(items, f"{path}.accounts", ACCOUNT_FIELDS):
        spec = AccountSpec(
            name=r.string(account, "name", apath, model_field=_f("accounts.ProviderAccount", "name")),
            credential=r.credential(account, apath),
            weight=r.number(account, "weight", apath, 1, _f("accounts.ProviderAccount", "weight")),
            priority=r.number(account, "priority", apath, 0, _f("accounts.ProviderAccount", "priority")),
            enabled=r.boolean(account, "enabled", apath, True),
        )
        if spec.name in {a.name for a in provider.accounts}:
            r.fail(f"{apath}.name", f"duplicate account {spec.name!r}")
        provider.accounts.append(spec)


def _targets(r: _Reader, items: list, path: str, route: RouteSpec, providers: set) -> None:
    for tpath, target in r.each(items, f"{path}.targets", TARGET_FIELDS):
        spec = TargetSpec(
            provider=r.string(target, "provider", tpath),
            model=r.string(target, "model", tpath),
            priority=r.number(target, "priority", tpath, 0, _f("accounts.RouteTarget", "priority")),
            weight=r.number(target, "weight", tpath, 1, _f("accounts.RouteTarget", "weight")),
        )
        if spec.provider and spec.provider not in providers:
            r.fail(f"{tpath}.provider", f"unknown provider {spec.provider!r}")
        route.targets.append(spec)


def _prices(r: _Reader, items: list, config: Config) -> None:
    """`prices:` entries, each number read by its usage.ModelPrice field (by label: accounts does not import
    usage) and the whole entry checked by ModelPrice.clean (the long-context tier is all or nothing)."""
    numbers = fields.numbers(PRICE)
    seen_prices = set()
    for path, item in r.each(items, "prices", {"model", "effective_from", *(f.name for f in numbers)}):
        before = len(r.problems)
        values = {f.name: r.number(item, f.name, path, None if f.null else f.default, f) for f in numbers}
        price = PriceSpec(model=r.string(item, "model", path), effective_from=_date(r, item, "effective_from", path),
                          numbers=values)  # fmt: skip
        if len(r.problems) == before:
            try:
                numbers[0].model(**values).clean()
            except ValidationError as e:
                r.problems.extend(f"{path}.{name}: {' '.join(m)}" for name, m in e.message_dict.items())
        if (price.model, price.effective_from) in seen_prices:
            r.fail(f"{path}.model", f"duplicate price for {price.model!r} from {price.effective_from or 'today'}")
        seen_prices.add((price.model, price.effective_from))
        config.prices.append(price)


def _projects(r: _Reader, items: list, config: Config) -> None:
    for path, item in r.each(items, "projects", PROJECT_FIELDS):
        slug = r.string(item, "slug", path, model_field=_f(PROJECT, "slug"))
        if slug in {p.slug for p in config.projects}:
            r.fail(f"{path}.slug", f"duplicate project {slug!r}")
        config.projects.append(
            ProjectSpec(
                slug=slug,
                name=r.string(item, "name", path, slug),
                active=r.boolean(item, "active", path, True),
                rpm_limit=r.number(item, "rpm", path, None, _f(PROJECT, "rpm_limit")),
                tpm_limit=r.number(item, "tpm", path, None, _f(PROJECT, "tpm_limit")),
                monthly_budget_usd=r.number(item, "monthly_budget_usd", path, None, _f(PROJECT, "monthly_budget_usd")),
                daily_budget_usd=r.number(item, "daily_budget_usd", path, None, _f(PROJECT, "daily_budget_usd")),
                budget_alert_percent=r.number(item, "budget_alert_percent", path, 80,
                                              _f(PROJECT, "budget_alert_percent")),
                allowed_models=_aliases(r, item, path),
                optimize=_optimize(r, item, path),
                redaction=_redaction(r, item, path),
                request_logs=_request_logs(r, item, path),
            )
        )


def _headers(r: _Reader, item: dict, path: str) -> dict:
    value = item.get("extra_headers") or {}
    where = f"{path}.extra_headers"
    if not isinstance(value, dict):
        r.fail(where, f"expected a mapping of header: value, got {type_name(value)}")
        return {}
    headers = {}
    for name, header in value.items():
        if not isinstance(name, str) or not isinstance(header, (str, int, float)) or isinstance(header, bool):
            r.fail(f"{where}.{name}", "expected a string value")
            continue
        headers[name] = r.expand(str(header), f"{where}.{name}")
    return headers


OPTIMIZE_FLAGS = ("response_cache_any", "cache_breakpoints", "stable_prefix", "strip_boilerplate",
                  "dedupe_tool_results", "diff_first")  # fmt: skip
OPTIMIZE_NUMBERS = ("response_cache_ttl", "cap_system_chars", "cap_message_chars", "cap_tool_result_chars",
                    "cap_tool_description_chars", "prune_max_tokens", "long_context_tokens", "complexity_threshold")  # fmt: skip
OPTIMIZE_LISTS = ("response_cache_models", "boilerplate_markers", "complexity_keywords", "drop_tools")
OPTIMIZE_ALIASES = ("route_background", "route_think", "route_long_context", "route_web_search", "route_complex",
                    "route_default")  # fmt: skip


def _optimize(r: _Reader, item: dict, path: str) -> dict | None:
    """`optimize:` names accounts.models.ProjectOptimization's fields; absent ones take their defaults."""
    value = item.get("optimize")
    where = f"{path}.optimize"
    if value is None:
        return None
    fields = {*OPTIMIZE_FLAGS, *OPTIMIZE_NUMBERS, *OPTIMIZE_LISTS, *OPTIMIZE_ALIASES, "diff_first_text"}
    if r.mapping(value, where, fields) is None:
        return None
    out = {name: r.boolean(value, name, where, False) for name in OPTIMIZE_FLAGS if name in value}
    out |= {name: r.number(value, name, where, None, _f("accounts.ProjectOptimization", name))
            for name in OPTIMIZE_NUMBERS if name in value}
    out |= {name: r.string(value, name, where, "") for name in (*OPTIMIZE_ALIASES, "diff_first_text") if name in value}
    for name in OPTIMIZE_LISTS:
        if name in value:
            lines = value[name] if isinstance(value[name], list) else [value[name]]
            if not all(isinstance(line, str) for line in lines):
                r.fail(f"{where}.{name}", "expected a list of strings")
            sep = "\n" if name == "boilerplate_markers" else ", "
            out[name] = sep.join(r.expand(str(line), f"{where}.{name}").strip() for line in lines)
    if out.get("response_cache_ttl") is None:
        out.pop("response_cache_ttl", None)
    return out


def _redaction(r: _Reader, item: dict, path: str) -> dict | None:
    """`redaction:` names accounts.models.ProjectRedaction's fields (secrets, pii: an action; rules: rule -> action);
    absent ones take their defaults (off)."""
    value = item.get("redaction")
    where = f"{path}.redaction"
    if value is None or r.mapping(value, where, {"secrets", "pii", "rules"}) is None:
        return None
    out = {}
    for name in ("secrets", "pii", "rules"):
        if name in value:
            try:
                out[name] = fields.checked(_f("accounts.ProjectRedaction", name), value[name])
            except fields.FieldProblem as problem:
                r.fail(f"{where}.{name}", str(problem))
    return out


def _request_logs(r: _Reader, item: dict, path: str) -> dict | None:
    """`request_logs:` {mode, retention_days, max_bytes}: every setting of the project's request logs; absent
    ones take their defaults (docs/request-logs.md)."""
    value = item.get("request_logs")
    where = f"{path}.request_logs"
    if value is None or r.mapping(value, where, set(REQUEST_LOG_FIELDS)) is None:
        return None
    out = {}
    for key, name in REQUEST_LOG_FIELDS.items():
        model_field = _f(PROJECT, name)
        if model_field.choices:
            modes = [choice for choice, _ in model_field.choices]
            out[name] = r.string(value, key, where, model_field.default)
            if out[name] not in modes:
                r.fail(f"{where}.{key}", f"invalid mode {out[name]!r} (expected one of: {', '.join(modes)})")
        else:
            out[name] = r.number(value, key, where, model_field.default, model_field)
    return out


def _capabilities(r: _Reader, item: dict, path: str) -> dict:
    value = item.get("capabilities") or {}
    problems = capability_problems(value)
    for problem in problems:
        r.fail(f"{path}.capabilities", problem)
    return {} if problems else value


def _fill_from_preset(r: _Reader, provider: ProviderSpec, path: str) -> None:
    """A preset gives the kind and the base URL unless the file names them (Provider.clean does the same)."""
    if not provider.preset:
        return
    if provider.preset not in PRESETS or (provider.kind in KINDS and preset_kind_problem(provider.preset, provider.kind)):
        r.fail(f"{path}.preset", preset_kind_problem(provider.preset, provider.kind))
        return
    preset = preset_for(provider.preset, provider.kind)
    provider.kind = provider.kind or preset.kind
    provider.base_url = provider.base_url or preset.base_url
    if not provider.base_url:
        r.fail(f"{path}.base_url", f"required: the {provider.preset} preset has no default URL")


def _date(r: _Reader, item: dict, key: str, path: str) -> date | None:
    value = item.get(key)
    if value is None or (isinstance(value, date) and not hasattr(value, "hour")):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(r.expand(value, f"{path}.{key}").strip())
        except ValueError:
            pass
    r.fail(f"{path}.{key}", f"expected a date like 2025-01-01, got {value!r}")
    return None


def _aliases(r: _Reader, item: dict, path: str) -> list[str]:
    value = item.get("allowed_models", [])
    where = f"{path}.allowed_models"
    if isinstance(value, str):
        value = [a.strip() for a in value.replace("\n", ",").split(",") if a.strip()]
    if not isinstance(value, list):
        r.fail(where, f"expected a list of model aliases, got {type_name(value)}")
        return []
    aliases = []
    for j, alias in enumerate(value):
        if not isinstance(alias, str) or not alias.strip():
            r.fail(f"{where}[{j}]", "expected a model alias or pattern")
            continue
        aliases.append(r.expand(alias, f"{where}[{j}]").strip())
    return aliases
