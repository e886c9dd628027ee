import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts import keys
from accounts.models import ModelRoute, Project

from .apply_config import config_apply_print

ROUTE_HINT = """\
No model route exists yet, so clients have nothing to call. Describe your providers and models in a YAML file,
for example gatehouse.yaml:

  providers:
    - name: anthropic-main
      kind: anthropic
      base_url: https://api.anthropic.com
      api_key_env: ANTHROPIC_API_KEY
  models:
    - alias: sonnet
      targets: [{provider: anthropic-main, model: claude-sonnet-4-5}]

then run:  python manage.py apply_config gatehouse.yaml
(or set GATEWAY_CONFIG=gatehouse.yaml so every start applies it), or add them in the admin."""


class Command(BaseCommand):
    help = (
        "First-run setup, safe to run on every start: an admin user if none exists (GATEWAY_ADMIN_USER / "
        "GATEWAY_ADMIN_PASSWORD, else 'admin' with a generated password printed once), a 'demo' project with a "
        "key printed once, and $GATEWAY_CONFIG applied if set."
    )

    def handle(self, *args, **options):
        admin_url = f"http://localhost:{settings.PORT}/admin/"
        self._admin_user(admin_url)
        self._demo_project()
        if settings.GATEWAY_CONFIG:
            self.stdout.write(f"Applying {settings.GATEWAY_CONFIG} (GATEWAY_CONFIG):")
            config_apply_print(self, settings.GATEWAY_CONFIG)
        if not ModelRoute.objects.exists():
            self.stdout.write(self.style.WARNING(ROUTE_HINT))
        self.stdout.write(f"Admin console: {admin_url}")

    def _admin_user(self, admin_url):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("Admin user: already set up.")
            return
        username = os.environ.get("GATEWAY_ADMIN_USER") or "admin"
        password = os.environ.get("GATEWAY_ADMIN_PASSWORD") or ""
        if User.objects.filter(username=username).exists():
            self.stdout.write(
                self.style.WARNING(
                    f"User {username!r} exists but is not a superuser. "
                    "Run `python manage.py createsuperuser` to make an admin."
                )
            )
            return
        generated = "" if password else secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password or generated)
        self.stdout.write(self.style.SUCCESS(f"Admin user {username!r} created. Log in at {admin_url}"))
        if generated:
            self.stdout.write(f"Its password (shown only now; change it in the admin): {generated}")

    def _demo_project(self):
        project, created = Project.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        if not created:
            self.stdout.write("Project 'demo': already exists (its keys are managed in the admin).")
            return
        key, secret = keys.key_create(project=project, name="demo key")
        self.stdout.write(self.style.SUCCESS("Project 'demo' created with an API key (shown only now):"))
        self.stdout.write(secret)
