from django.core.management.base import BaseCommand, CommandError

from accounts import keys
from accounts.models import Project


class Command(BaseCommand):
    help = "Create a client API key for a project. The secret is printed alone on the last line, once."

    def add_arguments(self, parser):
        parser.add_argument("project", metavar="PROJECT_SLUG")
        parser.add_argument("--name", required=True, help="who or what uses the key, e.g. ci-bot")
        parser.add_argument("--expires-days", type=int, default=None, metavar="N", help="default: never expires")

    def handle(self, *args, project, name, expires_days, **options):
        found = Project.objects.filter(slug=project).first()
        if found is None:
            slugs = ", ".join(Project.objects.values_list("slug", flat=True)[:20]) or "none yet"
            raise CommandError(f"no project {project!r} (projects: {slugs})")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1")
        key, secret = keys.key_create(project=found, name=name, expires_days=expires_days)
        expiry = f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "never expires"
        self.stdout.write(f"Created key {key.prefix}… '{key.name}' for project {found.slug} ({expiry}).")
        if not found.active:
            self.stdout.write(f"Note: project {found.slug} is inactive; its keys are refused until it is activated.")
        self.stdout.write("This is the only time the key is shown:")
        self.stdout.write(secret)
