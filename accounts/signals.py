"""Drop this process's cached keys and routing snapshot as soon as the config changes here. Other processes
notice within GATEWAY_CACHE_TTL seconds (they re-read on expiry)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from usage.models import ModelPrice

from .models import ApiKey, ModelRoute, Project, Provider, ProviderAccount, RouteTarget

CONFIG_MODELS = (Project, ApiKey, Provider, ProviderAccount, ModelRoute, RouteTarget, ModelPrice)


@receiver([post_save, post_delete])
def config_changed(sender, **kwargs):
    if sender in CONFIG_MODELS:
        from proxy import routing

        from . import keys

        keys.cache_clear()
        routing.cache_clear()
