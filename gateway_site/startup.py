"""Settings read before anything else, so that a configuration mistake (a placeholder secret, a malformed
number) stops manage.py and the servers with its one-paragraph message instead of a traceback."""

import os
import sys


def settings_or_exit() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.SECRET_KEY  # noqa: B018 - reading one setting imports the module, where the checks run
    except ImproperlyConfigured as e:
        sys.exit(f"ImproperlyConfigured: {e}")
