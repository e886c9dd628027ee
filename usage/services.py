"""Writes of the usage package.

    prices_apply     the `prices:` section of the config file, inside accounts.services.config_apply's
                     transaction (it reaches us as the accounts.signals.config_applying signal: accounts does
                     not import usage)
"""

from django.dispatch import receiver
from django.utils import timezone

from accounts.signals import config_applying

from .models import ModelPrice


@receiver(config_applying)
def prices_apply(sender, *, config, counts, upsert, **kwargs) -> None:
    """A price with a date is upserted for that date; without one, only a price that differs from the one in
    force today starts a new row, dated today (so re-applying a file changes nothing)."""
    today = timezone.localdate()
    for i, spec in enumerate(config.prices):
        values = {
            "input_per_mtok": spec.input_per_mtok,
            "output_per_mtok": spec.output_per_mtok,
            "cache_read_per_mtok": spec.cache_read_per_mtok,
            "cache_write_per_mtok": spec.cache_write_per_mtok,
        }
        if spec.effective_from is None:
            current = ModelPrice.objects.filter(model=spec.model, effective_from__lte=today).first()
            if current and all(getattr(current, k) == v for k, v in values.items()):
                counts["prices"]["unchanged"] += 1
                continue
        lookup = {"model": spec.model, "effective_from": spec.effective_from or today}
        counts["prices"][upsert(ModelPrice, lookup, values, f"prices[{i}]")[1]] += 1
