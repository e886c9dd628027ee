from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage and prices"

    def ready(self):
        from . import metrics, services  # noqa: F401  (services applies the config file's prices: config_applying)

        metrics.multiprocess_setup()  # PROMETHEUS_MULTIPROC_DIR: the per-process files /metrics sums up
        from accounts import audit

        from .models import ModelPrice

        audit.track(ModelPrice)  # price changes go in the audit trail (accounts/audit.py)
