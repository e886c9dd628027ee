"""Settings read before anything else, so that a configuration mistake (a placeholder secret, a malformed
number) stops manage.py and the servers with its one-paragraph message instead of a traceback.

Before that, the variables of the gateways Gatehouse replaces that stand for a Gatehouse setting (the Coding
Gateway's CIRCUIT_BREAKER_THRESHOLD, RETRY_MAX_ATTEMPTS, ...: kind "setting" in accounts/seeds) are copied to that
setting's own name, unless it is set too: Gatehouse's own name wins (docs/coming-from.md)."""

import os
import sys


def seed_environment(environ=os.environ) -> dict[str, str]:
    """Copy the seeds' setting variables to Gatehouse's names in `environ`; returns what was set. SQLAlchemy's
    async PostgreSQL URL (the Coding Gateway's DATABASE_URL) is read as the plain one."""
    from accounts.seeds import settings_from

    found = settings_from(environ)
    url = environ.get("DATABASE_URL", "")
    if url.startswith(("postgresql+asyncpg://", "postgres+asyncpg://")):
        found["DATABASE_URL"] = "postgresql://" + url.split("://", 1)[1]
    environ.update(found)
    return found


def settings_or_exit() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    seed_environment()
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.SECRET_KEY  # noqa: B018 - reading one setting imports the module, where the checks run
    except ImproperlyConfigured as e:
        sys.exit(f"ImproperlyConfigured: {e}")
