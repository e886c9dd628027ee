# Validators that make each field the one declaration of its rule (accounts/fields.py): budgets are not
# negative, a route's token defaults are at least 1. No schema change.

from django.core.validators import MinValueValidator
from django.db import migrations, models

BUDGET = {"blank": True, "decimal_places": 2, "max_digits": 12, "null": True, "validators": [MinValueValidator(0)]}
TOKENS = {"blank": True, "null": True, "validators": [MinValueValidator(1)]}
MONTH, DAY = "monthly budget (USD)", "daily budget (USD)"

FIELDS = [
    ("apikey", "daily_budget_usd", models.DecimalField(verbose_name=DAY, **BUDGET)),
    ("apikey", "monthly_budget_usd", models.DecimalField(
        help_text="This key's own limit per calendar month (UTC), inside the project's.", verbose_name=MONTH, **BUDGET)),
    ("project", "daily_budget_usd", models.DecimalField(
        help_text="Spending limit per calendar day (UTC). Empty means no limit.", verbose_name=DAY, **BUDGET)),
    ("project", "monthly_budget_usd", models.DecimalField(
        help_text="Spending limit per calendar month (UTC). Empty means no limit.", verbose_name=MONTH, **BUDGET)),
    ("modelroute", "default_max_tokens", models.PositiveIntegerField(
        help_text="Used when a client sends no max_tokens and the upstream needs one.", **TOKENS)),
    ("modelroute", "max_output_tokens", models.PositiveIntegerField(
        help_text="Upstream cap: larger client max_tokens are clamped to it.", **TOKENS)),
]  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("accounts", "0015_provider_preset_choices_callable")]

    operations = [migrations.AlterField(model_name=model, name=name, field=field) for model, name, field in FIELDS]
