from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from . import crypto
from .presets import (
    capabilities_resolve, capability_problems, kind_choices, preset_choices, preset_for, preset_kind_problem,
)

alias_list_help = "Model aliases or patterns such as claude-*, separated by commas or new lines. Empty means all."


# A budget in USD: empty = no limit. Its validators are the rule of the admin, the config file and the
# management API alike (accounts/fields.py).
_BUDGET = {"max_digits": 12, "decimal_places": 2, "null": True, "blank": True, "validators": [MinValueValidator(0)]}


def split_aliases(text: str) -> list[str]:
    return [a.strip() for a in text.replace("\n", ",").split(",") if a.strip()]


class Project(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    rpm_limit = models.PositiveIntegerField("requests/min", null=True, blank=True)
    tpm_limit = models.PositiveIntegerField("tokens/min", null=True, blank=True)
    monthly_budget_usd = models.DecimalField(
        "monthly budget (USD)", **_BUDGET,
        help_text="Spending limit per calendar month (UTC). Empty means no limit.",
    )
    daily_budget_usd = models.DecimalField(
        "daily budget (USD)", **_BUDGET,
        help_text="Spending limit per calendar day (UTC). Empty means no limit.",
    )
    budget_alert_percent = models.PositiveSmallIntegerField(
        "budget alert at %", default=80, validators=[MaxValueValidator(100)],
        help_text="Share of a budget after which a warning is logged once and the admin shows it.",
    )
    allowed_models = models.TextField(blank=True, help_text=alias_list_help)
    created_at = models.DateTimeField(default=timezone.now)
    # Request logs (usage/request_logs.py, docs/request-logs.md): off unless chosen here or in the config file.
    REQUEST_LOG_MODES = [("off", "off"), ("metadata", "metadata only (no bodies)"), ("full", "full (bodies)")]
    request_log_mode = models.CharField(
        "request logs", max_length=10, choices=REQUEST_LOG_MODES, default="off",
        help_text="Keep each request: metadata only (model, sizes, tool names, stop reason) or the full request "
        "and response bodies (a stream's assembled answer). Off stores nothing.",
    )
    request_log_retention_days = models.PositiveIntegerField(
        "request log retention (days)", default=30, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="The nightly job deletes this project's request logs older than this.",
    )
    request_log_max_bytes = models.PositiveIntegerField(
        "request log size cap (bytes)", default=262144, validators=[MinValueValidator(1024)],
        help_text="The most one log keeps (its JSON before compression); longer texts are cut with a marker.",
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name


class ApiKey(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True, editable=False, help_text="Shown to identify the key.")
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    allowed_models = models.TextField(blank=True, help_text=alias_list_help + " Narrows the project's list.")
    rpm_limit = models.PositiveIntegerField("requests/min", null=True, blank=True)
    tpm_limit = models.PositiveIntegerField("tokens/min", null=True, blank=True)
    max_concurrent = models.PositiveIntegerField(
        "max concurrent requests", null=True, blank=True, validators=[MinValueValidator(1)]
    )
    monthly_budget_usd = models.DecimalField(
        "monthly budget (USD)", **_BUDGET,
        help_text="This key's own limit per calendar month (UTC), inside the project's.",
    )
    daily_budget_usd = models.DecimalField(
        "daily budget (USD)", **_BUDGET
    )

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "created_at"])]

    def __str__(self):
        # Key names repeat across projects ("ci-bot" in each): the project makes the label unambiguous.
        return f"{self.project} / {self.name} ({self.prefix}…)"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class Provider(models.Model):
    name = models.CharField(
        max_length=100, unique=True, validators=[RegexValidator(r"^[A-Za-z0-9_.-]+$", "Letters, digits, - _ . only.")]
    )
    preset = models.CharField(
        max_length=30, choices=preset_choices, blank=True,
        help_text="Fills the kind, base URL and capabilities (see the README's preset table). Empty: the generic "
        "preset of the kind.",
    )
    kind = models.CharField(max_length=20, choices=kind_choices, blank=True, help_text="Empty: the preset's.")
    base_url = models.CharField(
        max_length=500,
        blank=True,
        # URLField would refuse single-label hosts such as http://ollama:11434/v1 (Docker service names).
        validators=[RegexValidator(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", "An http:// or https:// URL.")],
        help_text="As you would give the vendor's own SDK: https://api.openai.com/v1 (with /v1) or "
        "https://api.anthropic.com (without); Azure: the deployment URL "
        "(https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT). Empty: the preset's.",
    )
    connect_timeout = models.FloatField(default=10.0, validators=[MinValueValidator(0.1)], help_text="Seconds.")
    read_timeout = models.FloatField(
        default=600.0, validators=[MinValueValidator(1)], help_text="Seconds between bytes; long for reasoning models."
    )
    extra_headers = models.JSONField(default=dict, blank=True, help_text='Sent on every call, e.g. {"HTTP-Referer": "…"}.')
    capabilities = models.JSONField(
        default=dict, blank=True,
        help_text='Overrides of the preset\'s capabilities, e.g. {"reasoning_echo": true, "images": false}; see the '
        "README's preset table.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        """Fill kind and base URL from the preset and refuse what cannot work (the admin's forms; the config
        file is checked the same way in accounts/config.py)."""
        problems = {}
        if self.preset and (problem := preset_kind_problem(self.preset, self.kind)):
            problems["preset"] = problem
        elif not self.preset and not self.kind:
            problems["kind"] = "Choose a preset or a kind."
        preset = preset_for(self.preset, self.kind)
        self.kind = self.kind or preset.kind
        self.base_url = self.base_url or preset.base_url
        if not self.base_url:
            problems["base_url"] = f"The {preset.label} preset has no default URL: give the server's."
        if cap_problems := capability_problems(self.capabilities or {}):
            problems["capabilities"] = "; ".join(cap_problems)
        if problems:
            raise ValidationError(problems)

    @property
    def preset_name(self) -> str:
        return preset_for(self.preset, self.kind).name

    def resolved_capabilities(self):
        """The capabilities requests to this provider are built with (preset + overrides)."""
        return capabilities_resolve(preset_for(self.preset, self.kind), self.capabilities)


class ProviderAccount(models.Model):
    KIND_CHOICES = [
        ("api_key", "API key"),
        ("anthropic_oauth", "Anthropic OAuth (subscription credentials; see the README's warning)"),
    ]

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="accounts")
    name = models.CharField(max_length=100)
    kind = models.CharField(
        max_length=20, choices=KIND_CHOICES, default="api_key",
        help_text="OAuth accounts are connected with the Connect button (or manage.py oauth_start / oauth_finish).",
    )
    credential_encrypted = models.TextField(blank=True, editable=False)
    credential_last4 = models.CharField("credential", max_length=8, blank=True, editable=False)
    weight = models.PositiveIntegerField(default=1, help_text="Share of traffic among accounts of equal priority.")
    priority = models.PositiveIntegerField(default=0, help_text="Lower is tried first.")
    enabled = models.BooleanField(default=True)
    last_error = models.CharField(max_length=500, blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    # OAuth accounts: the access token is the credential above; these hold the rest (accounts/oauth.py).
    oauth_refresh_encrypted = models.TextField(blank=True, editable=False)
    oauth_expires_at = models.DateTimeField("token expires", null=True, blank=True, editable=False)
    oauth_refreshed_at = models.DateTimeField("last refresh", null=True, blank=True, editable=False)
    oauth_pending_encrypted = models.TextField(blank=True, editable=False)  # a connect in progress: PKCE verifier

    class Meta:
        ordering = ["provider__name", "priority", "name"]
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="account_unique_per_provider")]

    def __str__(self):
        return f"{self.provider.name}/{self.name}"

    @property
    def credential(self) -> str:
        return crypto.decrypt(self.credential_encrypted)

    def set_credential(self, secret: str) -> None:
        self.credential_encrypted = crypto.encrypt(secret) if secret else ""
        self.credential_last4 = crypto.masked(secret)


class ModelRoute(models.Model):
    alias = models.CharField(
        max_length=200,
        unique=True,
        help_text="The model name clients ask for. May be a pattern: claude-* or *. An exact alias wins over a "
        "pattern, a longer pattern over a shorter one.",
    )
    display_name = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    default_max_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Used when a client sends no max_tokens and the upstream needs one.",
    )
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Upstream cap: larger client max_tokens are clamped to it.",
    )
    STRATEGY_CHOICES = [
        ("priority", "priority: in order, failover to the next"),
        ("weighted", "weighted: random by weight"),
        ("least_busy", "least busy: fewest requests in flight"),
        ("round_robin", "round robin"),
    ]
    strategy = models.CharField(
        max_length=20, choices=STRATEGY_CHOICES, default="priority",
        help_text="How targets and their accounts are chosen. Healthy accounts always come first.",
    )
    retry_max_attempts = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: GATEWAY_RETRY_MAX_ATTEMPTS."
    )
    retry_base_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: GATEWAY_RETRY_BASE_MS.")
    retry_cap_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: GATEWAY_RETRY_CAP_MS.")
    retry_deadline_seconds = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.1)], help_text="Empty: GATEWAY_RETRY_DEADLINE_SECONDS."
    )
    ON_ALL_OPEN_CHOICES = [
        ("", "the setting (GATEWAY_BREAKER_ON_ALL_OPEN, default panic)"),
        ("panic", "panic: still send, to the account whose cooldown ends first"),
        ("fail_fast", "fail fast: answer 529/503 overloaded without an upstream call"),
    ]
    on_all_open = models.CharField(
        "when every account is open", max_length=10, choices=ON_ALL_OPEN_CHOICES, default="", blank=True,
        help_text="What a request gets when the circuit breaker of every account of this route is open. Panic "
        "(the default) is never worse than calling the provider directly: the client gets the provider's answer.",
    )
    response_cache_ttl = models.PositiveIntegerField(
        "response cache TTL (s)", null=True, blank=True,
        help_text="For projects that turned the response cache on: this route's answers are kept this many seconds "
        "instead of the project's TTL; 0 = never cache this route; empty = the project's setting.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["alias"]
        verbose_name = "model route"

    def __str__(self):
        return self.alias

    @property
    def is_pattern(self) -> bool:
        return any(c in self.alias for c in "*?[")


class RouteTarget(models.Model):
    route = models.ForeignKey(ModelRoute, on_delete=models.CASCADE, related_name="targets")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="targets")
    remote_model = models.CharField(
        max_length=200, help_text="The provider's own model id. Leave as * to pass the client's model name through."
    )
    priority = models.PositiveIntegerField(default=0, help_text="Lower is tried first; later ones are failover.")
    weight = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self):
        return f"{self.provider.name}:{self.remote_model}"


class ManagementToken(models.Model):
    """A credential for the management API (gateway_site/manage_api.py, accounts/manage_api.py), never for the
    model API. The secret is shown once at creation; only its digest is kept, as for API keys."""

    SCOPES = [("read", "read: usage, costs, errors, status"),
              ("logs", "logs: read, and request log bodies"), ("write", "write: everything")]  # fmt: skip

    name = models.CharField(max_length=200, unique=True)
    scope = models.CharField(max_length=10, choices=SCOPES, default="read")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "management token"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…, {self.scope})"


class IdempotentResponse(models.Model):
    """The answer to a create sent with an Idempotency-Key, replayed when a script retries it. The body may hold
    a new key's secret, so it is stored encrypted and dropped after GATEWAY_IDEMPOTENCY_HOURS."""

    token = models.ForeignKey(ManagementToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64, help_text="Method, path and body: a reused key must match.")
    status = models.PositiveSmallIntegerField(null=True, help_text="Empty while the first request is running.")
    body_encrypted = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="one_response_per_idempotency_key")]
        indexes = [models.Index(fields=["created_at"])]


DIFF_FIRST_TEXT = (
    "When you change an existing file, answer with a unified diff of the change (--- a/path, +++ b/path, @@ hunks) "
    "instead of the whole file, unless the file is new or most of it changes."
)
COMPLEXITY_KEYWORDS = "architect, architecture, security, migration, refactor, design, concurrency, performance"


class ProjectOptimization(models.Model):
    """A project's cost-optimization settings (proxy/optimize): every layer is off until set here or in the config
    file's `projects[].optimize`. The request path reads them through the key snapshot (`view()`)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="optimization")
    # response cache
    response_cache_ttl = models.PositiveIntegerField(
        "response cache TTL (s)", default=0, help_text="Exact response cache lifetime in seconds; 0 = off."
    )
    response_cache_models = models.TextField(
        "cached models", blank=True, help_text=alias_list_help.replace("all", "every model")
    )
    response_cache_any = models.BooleanField(
        "cache any request", default=False,
        help_text="Also cache requests that are not deterministic (temperature above 0 or unset).",
    )
    # token reduction
    cache_breakpoints = models.BooleanField(
        "prompt-cache breakpoints", default=False,
        help_text="Anthropic upstreams: mark system, tools and the latest turns with cache_control (at most 4, "
        "the client's own kept).",
    )
    stable_prefix = models.BooleanField(
        "stable prompt prefix", default=False,
        help_text="Translated requests: drop volatile lines (Claude Code's billing header) from the prompt start.",
    )
    strip_boilerplate = models.BooleanField("strip IDE boilerplate", default=False)
    boilerplate_markers = models.TextField(
        "extra boilerplate blocks", blank=True,
        help_text="One block per line: START ... END (the block from START to END is removed), or a single "
        "marker that starts a text block removed whole.",
    )
    cap_system_chars = models.PositiveIntegerField("cap system prompt (chars)", null=True, blank=True)
    cap_message_chars = models.PositiveIntegerField("cap user message (chars)", null=True, blank=True)
    cap_tool_result_chars = models.PositiveIntegerField("cap tool result (chars)", null=True, blank=True)
    cap_tool_description_chars = models.PositiveIntegerField(
        "cap tool descriptions (chars)", null=True, blank=True, validators=[MinValueValidator(100)],
        help_text="Cut each tool's description (and each parameter's) to this many characters, whole paragraphs "
        "first. Changes what the model is told about its tools; empty = never.",
    )
    drop_tools = models.TextField(
        "drop tools", blank=True,
        help_text="Tool names or patterns (Cron*, *Worktree) removed from every request, separated by commas or "
        "new lines; a tool the conversation already calls is kept.",
    )
    dedupe_tool_results = models.BooleanField("de-duplicate tool results", default=False)
    prune_max_tokens = models.PositiveIntegerField(
        "context ceiling (tokens)", null=True, blank=True, validators=[MinValueValidator(1000)],
        help_text="Drop the oldest turns above this estimated input size; empty = never.",
    )
    diff_first = models.BooleanField("diff-first instruction", default=False)
    diff_first_text = models.TextField("diff-first text", blank=True, default=DIFF_FIRST_TEXT)
    # smart routing (model aliases; empty = the model the client asked for)
    route_background = models.CharField(max_length=200, blank=True, help_text="Claude Code's small-model calls.")
    route_think = models.CharField(max_length=200, blank=True, help_text="Requests with thinking enabled.")
    route_long_context = models.CharField(max_length=200, blank=True)
    long_context_tokens = models.PositiveIntegerField(default=60000, help_text="Estimated input above this is long.")
    route_web_search = models.CharField(max_length=200, blank=True, help_text="A web-search tool is present.")
    route_complex = models.CharField(
        "route complex", max_length=200, blank=True, help_text="Requests whose complexity score reaches the threshold."
    )
    complexity_threshold = models.PositiveSmallIntegerField(default=5)
    complexity_keywords = models.TextField(blank=True, default=COMPLEXITY_KEYWORDS)
    route_default = models.CharField(max_length=200, blank=True, help_text="Every other request.")

    class Meta:
        verbose_name = "cost optimization"
        verbose_name_plural = "cost optimization"

    def __str__(self):
        return f"cost optimization of {self.project}"

    def view(self) -> "Optimization | None":
        """The request path's frozen copy, or None when every layer is off (the request pays one `is None`)."""
        values = {f: getattr(self, f) for f in Optimization.__dataclass_fields__ if f not in ("markers", "keywords")}
        values["markers"] = tuple(line.strip() for line in self.boilerplate_markers.splitlines() if line.strip())
        values["keywords"] = tuple(w.lower() for w in split_aliases(self.complexity_keywords))
        values["response_cache_models"] = tuple(split_aliases(self.response_cache_models))
        values["drop_tools"] = tuple(split_aliases(self.drop_tools))
        view = Optimization(**values)
        return view if view.any_on else None


@dataclass(frozen=True, slots=True)
class Optimization:
    response_cache_ttl: int = 0
    response_cache_models: tuple[str, ...] = ()
    response_cache_any: bool = False
    cache_breakpoints: bool = False
    stable_prefix: bool = False
    strip_boilerplate: bool = False
    markers: tuple[str, ...] = ()
    cap_system_chars: int | None = None
    cap_message_chars: int | None = None
    cap_tool_result_chars: int | None = None
    cap_tool_description_chars: int | None = None
    drop_tools: tuple[str, ...] = ()
    dedupe_tool_results: bool = False
    prune_max_tokens: int | None = None
    diff_first: bool = False
    diff_first_text: str = DIFF_FIRST_TEXT
    route_background: str = ""
    route_think: str = ""
    route_long_context: str = ""
    long_context_tokens: int = 60000
    route_web_search: str = ""
    route_complex: str = ""
    complexity_threshold: int = 5
    keywords: tuple[str, ...] = ()
    route_default: str = ""

    @property
    def reduces(self) -> bool:
        return bool(
            self.cache_breakpoints or self.stable_prefix or self.strip_boilerplate or self.cap_system_chars
            or self.cap_message_chars or self.cap_tool_result_chars or self.dedupe_tool_results
            or self.prune_max_tokens or self.diff_first or self.cap_tool_description_chars or self.drop_tools
        )

    @property
    def routes(self) -> bool:
        return bool(self.route_background or self.route_think or self.route_long_context or self.route_web_search
                    or self.route_complex or self.route_default)  # fmt: skip

    @property
    def any_on(self) -> bool:
        return bool(self.response_cache_ttl) or self.reduces or self.routes


# --- redaction (proxy/redact.py) ---------------------------------------------------------------------------

# Every rule the request path knows, by group: the detector of each is in proxy/redact.py (RULES; the unit tests
# check that the two name the same rules). docs/redaction.md says what each finds.
REDACTION_RULES = {
    "secrets": ("private_key", "anthropic_key", "openai_key", "github_token", "gatehouse_key", "slack_token",
                "stripe_key", "google_api_key", "aws_access_key", "aws_secret_key", "jwt", "url_password",
                "generic_secret"),
    "pii": ("email", "phone", "card_number"),
}  # fmt: skip
REDACTION_ACTIONS = [
    ("off", "off"),
    ("mask", "mask: replaced by [REDACTED:rule:hash] before the upstream"),
    ("block", "block: the request is refused (400) and never sent"),
    ("log", "log only: counted in the metrics, sent unchanged"),
]


def redaction_rule_actions(value) -> None:
    """The rule of `ProjectRedaction.rules` (the admin, the config file and the management API apply it alike):
    a mapping of known rule ids to actions."""
    if not isinstance(value, dict):
        raise ValidationError('Expected a mapping of rule: action, e.g. {"email": "mask"}.')
    known = {rule for rules in REDACTION_RULES.values() for rule in rules}
    actions = [action for action, _ in REDACTION_ACTIONS]
    problems = [f"unknown rule {rule!r}" for rule in value if rule not in known]
    problems += [f"{rule}: {action!r} is not one of {', '.join(actions)}" for rule, action in value.items()
                 if rule in known and action not in actions]  # fmt: skip
    if problems:
        raise ValidationError("; ".join(problems) + f" (rules: {', '.join(sorted(known))}).")


class ProjectRedaction(models.Model):
    """A project's redaction rules (proxy/redact.py): secrets and personal data found in what the client wrote are
    masked, blocked or counted before the request leaves for the upstream, and masked in stored copies. Off until
    set here or in the config file's `projects[].redaction`; the request path reads it through the key snapshot."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="redaction")
    secrets = models.CharField(
        max_length=5, choices=REDACTION_ACTIONS, default="off",
        help_text="API keys and tokens of the common providers, private keys, AWS keys, JWTs, passwords in URLs, "
        "high-entropy values of secret-named settings.",
    )
    pii = models.CharField(
        "personal data", max_length=5, choices=REDACTION_ACTIONS, default="off",
        help_text="E-mail addresses, phone numbers, card numbers (Luhn-checked).",
    )
    rules = models.JSONField(
        "per-rule actions", default=dict, blank=True, validators=[redaction_rule_actions],
        help_text='Overrides of the group\'s action, e.g. {"jwt": "log", "card_number": "block", "phone": "off"}. '
        "Rules: see docs/redaction.md.",
    )

    class Meta:
        verbose_name = "redaction"
        verbose_name_plural = "redaction"

    def __str__(self):
        return f"redaction of {self.project}"

    def view(self) -> "Redaction | None":
        """The request path's frozen copy, or None when every rule is off (the request pays one `is None`)."""
        group = {rule: getattr(self, name) for name, rules in REDACTION_RULES.items() for rule in rules}
        actions = {**group, **(self.rules if isinstance(self.rules, dict) else {})}
        on = tuple((rule, actions[rule]) for rules in REDACTION_RULES.values() for rule in rules
                   if actions[rule] != "off")  # fmt: skip
        return Redaction(on) if on else None


@dataclass(frozen=True, slots=True)
class Redaction:
    actions: tuple[tuple[str, str], ...]  # (rule, mask | block | log) for each rule on, in REDACTION_RULES order


class AuditEvent(models.Model):
    """Who changed which configuration object, when, how, and through what (accounts/audit.py writes these; the
    admin lists them read-only). Secret values never get here: a changed credential or digest reads "[secret]"."""

    ACTIONS = [("add", "added"), ("change", "changed"), ("delete", "deleted")]

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150, help_text="The admin user, or the system user who ran a command.")
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=40, help_text="admin, or the operator command: apply_config, create_api_key…")
    action = models.CharField(max_length=10, choices=ACTIONS)
    object_type = models.CharField(max_length=100, help_text="app_label.model")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True, help_text="field: [before, after]")

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["object_type", "object_id", "created_at"], name="audit_object_idx")]

    def __str__(self):
        return f"{self.actor} {self.get_action_display()} {self.object_type} {self.object_repr}"
