# The price fields' validators (accounts/fields.py: the one declaration of each rule). No schema change.

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import migrations, models

RATE = {"decimal_places": 6, "max_digits": 12, "validators": [MinValueValidator(0)]}
TIER = {**RATE, "blank": True, "null": True}
ONE_HOUR = "Anthropic prices 1-hour cache writes apart from 5-minute ones; empty = the cache write rate."
LONG_ONE_HOUR = "Empty = the long-context cache write rate (as for the 1-hour rate above)."
THRESHOLD = ("A request whose prompt (input + cache read + cache write tokens) is above this many tokens is billed "
             "entirely at the long-context rates below. Empty = the rates above apply to every request.")
RATES = {"input": "input", "output": "output", "cache_read": "cache read", "cache_write": "cache write"}

FIELDS = {
    **{f"{name}_per_mtok": models.DecimalField(default=0, verbose_name=f"{label} $/Mtok", **RATE)
       for name, label in RATES.items()},
    **{f"long_{name}_per_mtok": models.DecimalField(verbose_name=f"long-context {label} $/Mtok", **TIER)
       for name, label in RATES.items()},
    "cache_write_1h_per_mtok": models.DecimalField(help_text=ONE_HOUR, verbose_name="1-hour cache write $/Mtok", **TIER),
    "long_cache_write_1h_per_mtok": models.DecimalField(
        help_text=LONG_ONE_HOUR, verbose_name="long-context 1-hour cache write $/Mtok", **TIER),
    "batch_discount": models.DecimalField(
        decimal_places=4, default=0, max_digits=5, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Fraction taken off for a provider's native batch API (0.5 = half price)."),
    "long_context_threshold": models.PositiveIntegerField(
        blank=True, null=True, validators=[MinValueValidator(1)], help_text=THRESHOLD,
        verbose_name="long-context threshold (prompt tokens)"),
}  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("usage", "0007_ledger_session_id")]

    operations = [migrations.AlterField(model_name="modelprice", name=name, field=field)
                  for name, field in FIELDS.items()]  # fmt: skip
