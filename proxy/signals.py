"""Drop the request path's caches (keys, routing snapshot) as soon as the configuration changes in this
process, and tell the other gateway processes through Redis once the change is committed (proxy.auth)."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.signals import config_changed
from usage.models import ModelPrice

from . import auth


@receiver(config_changed)
def _config_changed(sender, **kwargs):
    auth.cache_clear()
    transaction.on_commit(auth.publish_change)


@receiver([post_save, post_delete], sender=ModelPrice)
def _price_changed(sender, **kwargs):
    _config_changed(sender)
