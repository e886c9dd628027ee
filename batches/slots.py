"""How many of a project's batch chunks run at once, across every worker: GATEWAY_BATCH_PROJECT_CHUNKS slots per
project (each chunk runs up to GATEWAY_BATCH_ITEM_CONCURRENCY items), so one project's big batch cannot take every
worker while another project's batch waits, and a project's batches share its slots.

A slot is a cache key taken with an atomic add (SET NX on Redis) that expires after the item lease, so a slot held
by a killed worker comes back by itself. Without Redis (the embedded default, one process) the in-process cache
does the same for that process.
"""

import secrets

from django.conf import settings
from django.core.cache import cache


def acquire(project_id: int) -> str | None:
    """A slot's key, or None when all of the project's slots are taken."""
    token = secrets.token_hex(8)
    timeout = int(settings.GATEWAY_BATCH_ITEM_LEASE_SECONDS) + 1
    for n in range(settings.GATEWAY_BATCH_PROJECT_CHUNKS):
        name = f"gh:batch-slot:{project_id}:{n}"
        if cache.add(name, token, timeout=timeout):
            return name
    return None


def release(name: str) -> None:
    cache.delete(name)
