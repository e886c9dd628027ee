from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage and prices"

    def ready(self):
        from . import services  # noqa: F401  (applies the config file's prices: accounts.signals.config_applying)
