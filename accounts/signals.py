"""`config_changed` is sent whenever keys, projects, providers, accounts or routes change: by single saves and
deletes (below) and by the bulk writes in accounts.services, which send no post_save. Whoever caches this
configuration (the request path, see proxy/signals.py) listens to it; accounts itself caches nothing."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from .models import ApiKey, ModelRoute, Project, ProjectOptimization, Provider, ProviderAccount, RouteTarget

CONFIG_MODELS = (Project, ProjectOptimization, ApiKey, Provider, ProviderAccount, ModelRoute, RouteTarget)

config_changed = Signal()
# Sent inside config_apply's transaction with the parsed Config: a package that owns a section of the file
# (usage: prices) applies it in the receiver, counting into `counts` and writing with `upsert`.
config_applying = Signal()


@receiver([post_save, post_delete])
def _model_changed(sender, **kwargs):
    if sender in CONFIG_MODELS:
        config_changed.send(sender=sender)
