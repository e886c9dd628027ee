"""Gatehouse settings. Everything comes from the environment, read once here (see README, "Configuration")."""

import os
import re
import secrets
import sysconfig
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# A source checkout (manage.py beside the packages) keeps its data and collected static files in the checkout, as
# bin/run expects; an installed package must not write into site-packages: it uses the working directory.
CHECKOUT = (BASE_DIR / "manage.py").is_file()
WORK_DIR = BASE_DIR if CHECKOUT else Path.cwd()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


DATA_DIR = Path(os.environ.get("GATEWAY_DATA_DIR") or WORK_DIR / "data")


def ensure_data_dir() -> None:
    """DATA_DIR holds the SQLite file and the generated secrets: when the gateway creates it, only its owner may
    enter it (0700). A directory the operator made (a mounted volume, say) keeps the mode it was given."""
    if not DATA_DIR.is_dir():
        DATA_DIR.mkdir(parents=True, mode=0o700, exist_ok=True)


def owner_only(path: Path) -> None:
    """Create the file if missing and take group and world access away (0600), best effort: a file owned by
    someone else, or in a directory that does not exist yet, is left to the operator."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass


def env_secret(name: str, generate) -> str:
    """The variable (or NAME_FILE, for Docker secrets); else a value generated once and kept in DATA_DIR."""
    if os.environ.get(name):
        return os.environ[name]
    if os.environ.get(f"{name}_FILE"):
        return Path(os.environ[f"{name}_FILE"]).read_text().strip()
    kept = DATA_DIR / f".{name.lower()}"
    if kept.exists():
        owner_only(kept)  # kept by an older version at 0644
        return kept.read_text().strip()
    ensure_data_dir()
    value = generate()
    fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# --- Core -------------------------------------------------------------------------------------------------
SECRET_KEY = env_secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
HOST, PORT = os.environ.get("HOST", "127.0.0.1"), env_int("PORT", 8000)  # where bin/serve listens
# This deployment's id in the x-gatehouse-hop header (proxy/hop.py); empty: derived from SECRET_KEY.
GATEWAY_DEPLOYMENT_ID = os.environ.get("GATEWAY_DEPLOYMENT_ID", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "channels",
    "ninja",  # /docs renders Swagger UI from ninja's own static files, not from a CDN
    "accounts",
    "usage",
    "batches",
    "proxy",
]

# The admin's and /docs' stack: the model API never passes through it (gateway_site/asgi.py serves it bare).
# All of these are async-capable; django-prometheus's two run their hooks in a worker thread (admin pages only).
MIDDLEWARE = [
    # django-prometheus's django_http_* series for the admin, /docs and static files (the API is not counted
    # here: it never passes through this list; its series are usage/metrics.py's gateway_*)
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.audit.AuditMiddleware",  # admin POSTs by staff: changes go in the audit trail
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "gateway_site.urls"
ASGI_APPLICATION = "gateway_site.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # the admin's overrides: templates/ in a checkout, the wheel's data files once installed (pyproject.toml)
        "DIRS": [BASE_DIR / "templates" if CHECKOUT else Path(sysconfig.get_path("data")) / "share/gatehouse/templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------------------
# Connections are not reused across requests under ASGI (Django closes them per request), so CONN_MAX_AGE=0.
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'gatehouse.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    ensure_data_dir()
    # The database holds key digests and encrypted credentials: created 0600 before SQLite opens it (SQLite
    # gives its -wal and -shm files the database file's mode).
    if DATABASES["default"]["NAME"] and DATABASES["default"]["NAME"] != ":memory:":
        owner_only(Path(DATABASES["default"]["NAME"]))
    # WAL lets the admin read while the ledger writer writes; a file test DB lets the test server share it.
    # IMMEDIATE: a transaction takes the write lock when it begins, waiting up to `timeout` for it, instead of
    # failing at once with "database is locked" when it reads first and then writes beside another writer.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;",
                                       "transaction_mode": "IMMEDIATE"}  # fmt: skip
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test_gatehouse_{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker (all optional) --------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True  # no broker: batch work runs in-process
    CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Batch work survives a worker crash (batches/tasks.py): a task is acked only once it has run, a worker killed
# mid-task gives its task back, and each process takes one task at a time so a crash strands at most one.
# A task left unacked by a dead worker is handed out again after the visibility timeout (Redis has no other way
# to know the worker died), so the timeout must exceed the longest task (a batch chunk, bounded by the retry
# deadline of its items).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("GATEWAY_CELERY_VISIBILITY_TIMEOUT", 3600),
    "unacked_restore_interval": 1 if env_int("GATEWAY_CELERY_VISIBILITY_TIMEOUT", 3600) < 60 else 10,
    "unacked_restore_throttle": 1,
}
# Batches (batches/): limits per batch, items per task and at once per task, how long a running item is its
# worker's before another may take it over (must exceed the longest an item can run).
GATEWAY_BATCH_MAX_ITEMS = env_int("GATEWAY_BATCH_MAX_ITEMS", 100_000)
GATEWAY_BATCH_MAX_BYTES = env_int("GATEWAY_BATCH_MAX_BYTES", 256 * 1024 * 1024)
GATEWAY_BATCH_CHUNK = env_int("GATEWAY_BATCH_CHUNK", 16)
GATEWAY_BATCH_ITEM_CONCURRENCY = env_int("GATEWAY_BATCH_ITEM_CONCURRENCY", 8)
GATEWAY_BATCH_PROJECT_CHUNKS = env_int("GATEWAY_BATCH_PROJECT_CHUNKS", 4)  # chunks of one project running at once
GATEWAY_BATCH_ITEM_LEASE_SECONDS = env_float("GATEWAY_BATCH_ITEM_LEASE_SECONDS", 900.0)
# The share of a key's (or project's) rate limits batch items leave to live requests (batches/headroom.py).
GATEWAY_BATCH_LIVE_RESERVE = env_float("GATEWAY_BATCH_LIVE_RESERVE", 0.2)
# Submit a batch whose items all route to one provider with a batch API as one native upstream batch (half price
# at the big providers, results within the provider's window) instead of item by item (batches/native.py).
GATEWAY_BATCH_NATIVE = env_bool("GATEWAY_BATCH_NATIVE", True)
CELERY_BEAT_SCHEDULE = {
    # Native upstream batches are polled, and batches past their completion window expire (batches/tasks.py).
    "batches-tick": {"task": "batches.tasks.tick", "schedule": env_float("GATEWAY_BATCH_TICK_SECONDS", 30.0)},
    # Daily rollups and raw-row retention (usage/tasks.py), at 00:10 UTC; GATEWAY_ROLLUP_BEAT_SECONDS > 0 runs
    # them every that many seconds instead (tests). Without a broker, usage/scheduler.py runs them in-process.
    "usage-nightly": {"task": "usage.tasks.nightly",
                      "schedule": env_float("GATEWAY_ROLLUP_BEAT_SECONDS", 0.0) or crontab(hour=0, minute=10)},
    # The providers' own bills against the ledger (usage/reconcile.py, docs/reconciliation.md), at 04:20 UTC when
    # the vendors' reports of the day before have filled in; GATEWAY_RECONCILE_BEAT_SECONDS > 0: that often (tests).
    "usage-reconcile-bills": {"task": "usage.tasks.reconcile_bills",
                              "schedule": env_float("GATEWAY_RECONCILE_BEAT_SECONDS", 0.0) or crontab(hour=4, minute=20)},
    # Request logs past their project's retention (usage/request_logs.py), on the same schedule.
    "usage-request-logs": {"task": "usage.tasks.request_logs_expire",
                           "schedule": env_float("GATEWAY_ROLLUP_BEAT_SECONDS", 0.0) or crontab(hour=0, minute=10)},
}
# Rollups re-roll this many past days every night (rows that arrive late); raw ledger rows older than
# GATEWAY_LEDGER_RETENTION_DAYS are deleted once their day is rolled up (0 keeps them all). GATEWAY_ROLLUP_IN_PROCESS:
# auto = a daily timer in the web process when no broker is configured (REDIS_URL unset); on; off.
GATEWAY_ROLLUP_REROLL_DAYS = env_int("GATEWAY_ROLLUP_REROLL_DAYS", 3)
GATEWAY_LEDGER_RETENTION_DAYS = env_int("GATEWAY_LEDGER_RETENTION_DAYS", 0)
GATEWAY_ROLLUP_IN_PROCESS = os.environ.get("GATEWAY_ROLLUP_IN_PROCESS", "auto")
GATEWAY_ROLLUP_FIRST_DELAY_SECONDS = env_float("GATEWAY_ROLLUP_FIRST_DELAY_SECONDS", 60.0)  # in-process: after start
# Bill reconciliation (docs/reconciliation.md): each night the last GATEWAY_RECONCILE_DAYS complete days are fetched
# again (vendors amend recent days); a day x model line is over tolerance when its cost differs by more than
# GATEWAY_RECONCILE_TOLERANCE_USD and more than GATEWAY_RECONCILE_TOLERANCE_PERCENT, or a token count by more than
# that percent. GATEWAY_RECONCILE_INCLUDE_TODAY=true also compares today's partial figures (tests, demos).
GATEWAY_RECONCILE_DAYS = env_int("GATEWAY_RECONCILE_DAYS", 7)
GATEWAY_RECONCILE_TOLERANCE_PERCENT = env_float("GATEWAY_RECONCILE_TOLERANCE_PERCENT", 1.0)
GATEWAY_RECONCILE_TOLERANCE_USD = env_float("GATEWAY_RECONCILE_TOLERANCE_USD", 0.01)
GATEWAY_RECONCILE_INCLUDE_TODAY = env_bool("GATEWAY_RECONCILE_INCLUDE_TODAY", False)

# --- Gateway ----------------------------------------------------------------------------------------------
# Upstream credentials are encrypted at rest with this Fernet key; client API keys are stored as
# HMAC-SHA256(pepper, secret). Neither is SECRET_KEY, so SECRET_KEY can rotate without breaking keys.
GATEWAY_ENCRYPTION_KEY = env_secret("GATEWAY_ENCRYPTION_KEY", _fernet_key)


GATEWAY_KEY_PEPPER = env_secret("GATEWAY_KEY_PEPPER", lambda: secrets.token_urlsafe(32))
# .env.example ships `change-me` for every secret: a deployment that keeps one must not start (issue 21).
_PLACEHOLDERS = ("changeme", "changethis", "replaceme", "yoursecret")  # as prefixes, after dropping -_. and case
_MIN_SECRET_LENGTH = 16
_SECRET_HINT = '  python -c "import secrets; print(secrets.token_urlsafe(50))"'
_FERNET_HINT = '  python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def _weak_secret(name: str, value: str, consequence: str) -> str | None:
    """What is wrong with a placeholder (`change-me` and the like) or a value too short to be random, else None.
    Only a value the operator gave (NAME or NAME_FILE) is judged: one kept in the data dir was generated here.
    The value itself is never echoed."""
    plain = re.sub(r"[^a-z0-9]", "", value.lower())
    given = os.environ.get(name) or os.environ.get(f"{name}_FILE")
    weak = len(value) < _MIN_SECRET_LENGTH or len(set(value)) < 5 or plain.startswith(_PLACEHOLDERS)
    if not (given and weak):
        return None
    return (
        f"{name} is a placeholder (such as .env.example's change-me) or too weak to be random (under "
        f"{_MIN_SECRET_LENGTH} characters, or under 5 different ones). Generate one with:\n{_SECRET_HINT}\n"
        f"or leave {name} unset to have one generated and kept in GATEWAY_DATA_DIR.{consequence}"
    )


def _bad_fernet_key(key: str) -> str | None:
    """A placeholder fails here, at start-up and in `manage.py check`, rather than as a ValueError when the
    first credential is stored."""
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode())
        return None
    except (ValueError, TypeError):
        return (
            "GATEWAY_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes). Generate one "
            f"with:\n{_FERNET_HINT}\nor leave GATEWAY_ENCRYPTION_KEY unset to have one generated and kept in "
            "GATEWAY_DATA_DIR. Once credentials are stored, keep the key: they cannot be decrypted with another."
        )


def _check_secrets() -> None:
    """Every faulty secret at once, each named, so that .env.example copied as it is takes one round to fix."""
    problems = [p for p in (
        _weak_secret("SECRET_KEY", SECRET_KEY, ""),
        _bad_fernet_key(GATEWAY_ENCRYPTION_KEY),
        _weak_secret("GATEWAY_KEY_PEPPER", GATEWAY_KEY_PEPPER,
                     " Client keys are digested with it: a deployment that already issued keys must issue them again."),
    ) if p]  # fmt: skip
    if problems:
        raise ImproperlyConfigured("\n".join(problems))


_check_secrets()
# How long a process trusts its cached keys, routes and prices before re-checking (revocation latency bound).
GATEWAY_CACHE_TTL = env_float("GATEWAY_CACHE_TTL", 3.0)
# Management API (gateway_site/manage_api.py): calls per token (django-ninja throttle syntax), and how long an
# Idempotency-Key's answer is kept for replay.
GATEWAY_MANAGEMENT_RATE = os.environ.get("GATEWAY_MANAGEMENT_RATE", "600/m")
GATEWAY_IDEMPOTENCY_HOURS = env_int("GATEWAY_IDEMPOTENCY_HOURS", 24)
# The Coding Gateway's /admin/* JSON endpoints (gateway_site/coding_gateway.py) accept this key besides management
# tokens, and its response headers (proxy/coding_gateway_headers.py) are on when asked: docs/coding-gateway-api.md.
GATEWAY_CODING_GATEWAY_HEADERS = env_bool("GATEWAY_CODING_GATEWAY_HEADERS", False)
GATEWAY_MAX_BODY_BYTES = env_int("GATEWAY_MAX_BODY_BYTES", 32 * 1024 * 1024)
# POST /v1/files and /v1/messages/batches only (proxy/errors.py body_limit): batch inputs are larger than model calls.
GATEWAY_MAX_UPLOAD_BYTES = env_int("GATEWAY_MAX_UPLOAD_BYTES", 256 * 1024 * 1024)
GATEWAY_DEFAULT_MAX_TOKENS = env_int("GATEWAY_DEFAULT_MAX_TOKENS", 4096)
GATEWAY_LEDGER_FLUSH_SECONDS = env_float("GATEWAY_LEDGER_FLUSH_SECONDS", 0.2)
# On SIGTERM the server stops accepting and lets requests in flight finish for this long; streams still running
# then end with an error event in the caller's format (gateway_site/server.py). Keep it below the orchestrator's
# kill timeout (Kubernetes terminationGracePeriodSeconds, docker stop -t) by ~10 s.
GATEWAY_SHUTDOWN_GRACE_SECONDS = env_float("GATEWAY_SHUTDOWN_GRACE_SECONDS", 20.0)
# Server processes on the one port (gateway_site/workers.py): a number, or `auto` (one per core when the state is
# shared through Redis and PostgreSQL, else 1).
GATEWAY_WORKERS = os.environ.get("GATEWAY_WORKERS", "auto")
# A translated stream whose upstream says nothing for this long gets a ping (docs/translation.md §5.11 A.2).
GATEWAY_STREAM_PING_SECONDS = env_float("GATEWAY_STREAM_PING_SECONDS", 10.0)
# The Responses API over WebSocket (proxy/ws.py): response.create frames per connection, the connection's lifetime
# (a new response.create after it gets the error code Codex reconnects on) and idle time, connections one key may
# hold open at once (per process), and the largest frame (a request body; a larger one gets an error event).
GATEWAY_WS_MAX_FRAMES = env_int("GATEWAY_WS_MAX_FRAMES", 10_000)
GATEWAY_WS_MAX_LIFETIME_SECONDS = env_float("GATEWAY_WS_MAX_LIFETIME_SECONDS", 3600.0)
GATEWAY_WS_IDLE_SECONDS = env_float("GATEWAY_WS_IDLE_SECONDS", 600.0)
GATEWAY_WS_MAX_CONNECTIONS_PER_KEY = env_int("GATEWAY_WS_MAX_CONNECTIONS_PER_KEY", 32)
GATEWAY_WS_MAX_FRAME_BYTES = env_int("GATEWAY_WS_MAX_FRAME_BYTES", GATEWAY_MAX_BODY_BYTES)
# Retries before the first byte (proxy/attempts.py); a route may override each.
GATEWAY_RETRY_MAX_ATTEMPTS = env_int("GATEWAY_RETRY_MAX_ATTEMPTS", 3)  # upstream calls per request, failover included
GATEWAY_RETRY_BASE_MS = env_int("GATEWAY_RETRY_BASE_MS", 250)
GATEWAY_RETRY_CAP_MS = env_int("GATEWAY_RETRY_CAP_MS", 4000)
GATEWAY_RETRY_DEADLINE_SECONDS = env_float("GATEWAY_RETRY_DEADLINE_SECONDS", 30.0)
# Circuit breaker per upstream account (proxy/breaker.py). A threshold of 0 turns breakers and cooldowns off.
GATEWAY_BREAKER_THRESHOLD = env_int("GATEWAY_BREAKER_THRESHOLD", 5)
GATEWAY_BREAKER_WINDOW_SECONDS = env_float("GATEWAY_BREAKER_WINDOW_SECONDS", 30.0)
GATEWAY_BREAKER_COOLDOWN_SECONDS = env_float("GATEWAY_BREAKER_COOLDOWN_SECONDS", 30.0)
GATEWAY_BREAKER_PROBE_SECONDS = env_float("GATEWAY_BREAKER_PROBE_SECONDS", 30.0)
GATEWAY_BREAKER_RATE_LIMIT_SECONDS = env_float("GATEWAY_BREAKER_RATE_LIMIT_SECONDS", 1.0)  # a 429 without retry-after
GATEWAY_CREDENTIAL_COOLDOWN_SECONDS = env_float("GATEWAY_CREDENTIAL_COOLDOWN_SECONDS", 300.0)
GATEWAY_BREAKER_SYNC_SECONDS = env_float("GATEWAY_BREAKER_SYNC_SECONDS", 1.0)  # how stale another process's view may be
# When every account of a route is open: "panic" still sends the request (the client gets the upstream's own
# answer, never one the gateway made up); "fail_fast" answers 529/503 at once. A route may override it.
GATEWAY_BREAKER_ON_ALL_OPEN = env_choice("GATEWAY_BREAKER_ON_ALL_OPEN", "panic", ("panic", "fail_fast"))
# Shared policy state (limits, budgets, breakers) lives in Redis when REDIS_URL is set (proxy/policies/store.py).
GATEWAY_POLICY_FAIL_CLOSED = env_bool("GATEWAY_POLICY_FAIL_CLOSED", False)  # refuse requests while Redis is down
GATEWAY_REDIS_TIMEOUT = env_float("GATEWAY_REDIS_TIMEOUT", 1.0)  # a busy Redis is not a dead one
GATEWAY_REDIS_RETRY_SECONDS = env_float("GATEWAY_REDIS_RETRY_SECONDS", 5.0)
# Stored Responses API responses (previous_response_id) are kept this many days; 0 keeps them forever.
GATEWAY_RESPONSES_RETENTION_DAYS = env_float("GATEWAY_RESPONSES_RETENTION_DAYS", 30.0)
GATEWAY_CONFIG = os.environ.get("GATEWAY_CONFIG", "")
# Anthropic OAuth accounts (accounts/oauth.py): refresh this long before expiry; the endpoints of the PKCE flow.
GATEWAY_OAUTH_REFRESH_MARGIN_SECONDS = env_float("GATEWAY_OAUTH_REFRESH_MARGIN_SECONDS", 300.0)
GATEWAY_OAUTH_AUTHORIZE_URL = os.environ.get("GATEWAY_OAUTH_AUTHORIZE_URL", "https://claude.ai/oauth/authorize")
GATEWAY_OAUTH_TOKEN_URL = os.environ.get("GATEWAY_OAUTH_TOKEN_URL", "https://console.anthropic.com/v1/oauth/token")
GATEWAY_OAUTH_REDIRECT_URI = os.environ.get(
    "GATEWAY_OAUTH_REDIRECT_URI", "https://console.anthropic.com/oauth/code/callback"
)
GATEWAY_OAUTH_CLIENT_ID = os.environ.get("GATEWAY_OAUTH_CLIENT_ID", "9d1c250a-e61b-44d9-88ed-5944d1962f5e")
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# The Coding Gateway's ADMIN_API_KEY (accounts/seeds/coding_gateway.py): the key of its /admin/* JSON endpoints.
GATEWAY_ADMIN_API_KEY = os.environ.get("GATEWAY_ADMIN_API_KEY") or os.environ.get("ADMIN_API_KEY", "")
# Django's own cap on a body read whole (request.body, form fields; file parts are not counted). It stays at the
# general limit, which also guards the admin's forms: the upload paths never read their body through request.body
# (batches/api.py), and their file parts stream to temporary files.
DATA_UPLOAD_MAX_MEMORY_SIZE = GATEWAY_MAX_BODY_BYTES

# --- Admin, static, i18n ------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = WORK_DIR / "staticfiles"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOGIN_URL = "admin:login"
# Admin login throttling (gateway_site/login_throttle.py): this many failed logins for one username from one
# address lock that pair out for GATEWAY_LOGIN_LOCKOUT_SECONDS; four times as many from anywhere lock the username.
GATEWAY_LOGIN_FAILURE_LIMIT = env_int("GATEWAY_LOGIN_FAILURE_LIMIT", 5)
GATEWAY_LOGIN_LOCKOUT_SECONDS = env_int("GATEWAY_LOGIN_LOCKOUT_SECONDS", 900)
# Failed API-key checks per client address and window before that address is refused with 429 (proxy/auth_failures.py)
GATEWAY_AUTH_FAILURE_LIMIT = env_int("GATEWAY_AUTH_FAILURE_LIMIT", 20)
GATEWAY_AUTH_FAILURE_WINDOW_SECONDS = env_int("GATEWAY_AUTH_FAILURE_WINDOW_SECONDS", 60)

# --- Security (HTTPS-only items are opt-in: see README "Deploying behind TLS") -----------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"], "https")

# --- Logging: one line per event, never request bodies or keys ---------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "httpx": {"level": "WARNING"}},
}
