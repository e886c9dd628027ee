from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Access and providers"

    def ready(self):
        from . import signals  # noqa: F401  (cache invalidation on config changes)
