from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Access and providers"

    def ready(self):
        from . import audit, signals  # noqa: F401  (signals: cache invalidation on config changes)

        audit.connect()  # the audit trail's receivers (accounts/audit.py)
