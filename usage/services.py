"""Writes of the usage package.

    prices_apply     the `prices:` section of the config file, inside accounts.services.config_apply's
                     transaction (it reaches us as the accounts.signals.config_applying signal: accounts does
                     not import usage)
    prices_load      the shipped price catalogue (usage/data/prices.json) or another file: `manage.py load_prices`
    rollup_day, rollup_recent, rollup_since, retention_apply, nightly
                     the daily rollups and raw-row retention (below; usage.tasks and `manage.py rollup_usage`
                     call them)
"""

import json
import logging
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts import fields
from accounts.signals import config_applying

from . import pricing, selectors
from .models import DailyRollup, ModelPrice, RolledDay, UsageRecord

log = logging.getLogger(__name__)
CATALOGUE = Path(__file__).resolve().parent / "data" / "prices.json"
PRICE = "usage.ModelPrice"  # its number fields are what a price file (config or catalogue) may give


@receiver(config_applying)
def prices_apply(sender, *, config, counts, upsert, **kwargs) -> None:
    """A price with a date is upserted for that date; without one, only a price that differs from the one in
    force today starts a new row, dated today (so re-applying a file changes nothing)."""
    today = timezone.localdate()
    for i, spec in enumerate(config.prices):
        values = spec.numbers
        if spec.effective_from is None:
            current = ModelPrice.objects.filter(model=spec.model, effective_from__lte=today).first()
            if current and all(getattr(current, k) == v for k, v in values.items()):
                counts["prices"]["unchanged"] += 1
                continue
        lookup = {"model": spec.model, "effective_from": spec.effective_from or today}
        counts["prices"][upsert(ModelPrice, lookup, values, f"prices[{i}]")[1]] += 1



class CatalogueError(ValueError):
    pass


def prices_read(path: Path | str = CATALOGUE) -> list[dict]:
    """A price catalogue file: {"prices": [{"model", "effective_from", "input_per_mtok", ...}, ...]}. Every
    entry is checked before anything is written; the error names the entry and the field."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise CatalogueError(f"{path}: {e}") from None
    entries = data.get("prices") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CatalogueError(f"{path}: expected an object with a list `prices`")
    out = []
    for i, entry in enumerate(entries):
        where = f"{path}: prices[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str) or not entry["model"]:
            raise CatalogueError(f"{where}.model: a model id is required")
        try:
            values = {"model": entry["model"], "effective_from": date.fromisoformat(str(entry.get("effective_from")))}
        except ValueError:
            raise CatalogueError(f"{where}.effective_from: an ISO date (YYYY-MM-DD) is required") from None
        for field in fields.numbers(PRICE):
            values[field.name] = _catalogue_number(entry.get(field.name), field, where)
        problem = pricing.long_tier_problem(values)
        if problem:
            raise CatalogueError(f"{where}.{problem[0]}: {problem[1]}")
        out.append(values)
    return out


def _catalogue_number(raw, field, where: str) -> Decimal | int | None:
    """One number of a catalogue entry, checked by its ModelPrice field (accounts/fields.py), as the config file
    and the admin check it."""
    if raw is None:
        return None if field.null else field.default
    try:
        return fields.number(field, raw)
    except fields.FieldProblem as problem:
        raise CatalogueError(f"{where}.{field.name}: {problem}") from None


@transaction.atomic
def prices_load(entries: list[dict], *, update: bool = False) -> dict[str, int]:
    """Add each catalogue price that has no ModelPrice row for its model and date. An existing row is left as it
    is (the admin's edits win) unless `update`. Returns counts of created, updated and kept rows."""
    counts = {"created": 0, "updated": 0, "kept": 0}
    for values in entries:
        lookup = {"model": values["model"], "effective_from": values["effective_from"]}
        numbers = {f.name: values[f.name] for f in fields.numbers(PRICE)}
        row = ModelPrice.objects.filter(**lookup).first()
        if row is None:
            ModelPrice.objects.create(**lookup, **numbers)
            counts["created"] += 1
        elif update and any(getattr(row, k) != v for k, v in numbers.items()):
            ModelPrice.objects.filter(pk=row.pk).update(**numbers)
            counts["updated"] += 1
        else:
            counts["kept"] += 1
    return counts

# --- rollups and retention ----------------------------------------------------------------------------------
#
#   rollup_day(day)        replace the day's DailyRollup rows with the sums of its raw rows (idempotent)
#   rollup_recent(days)    re-roll the last N complete days: rows that arrive late (a spool replayed after an
#                          outage, a batch collected the next morning) are counted the next night
#   rollup_since(first)    backfill every day from `first` to yesterday
#   retention_apply(keep)  delete raw rows older than `keep` days, a day at a time, each in the transaction that
#                          rolls that day up, so no row leaves the ledger before the rollup counts it
#   nightly()              what beat (or the in-process timer) runs once a day: rollup_recent + retention_apply
#
# Days are UTC calendar days (TIME_ZONE), like budgets. Only complete days are rolled; today is read raw.


class RetentionRace(Exception):
    """Rows for a day arrived between its rollup and its deletion: nothing was deleted; the next run retries."""


def rollup_day(day: date) -> RolledDay:
    """Sum the day's raw rows into DailyRollup, replacing whatever an earlier run wrote for that day."""
    if day >= timezone.localdate():
        raise ValueError(f"{day} is not over yet: only past days are rolled up (today is read from raw rows)")
    _marker_ensure(day)
    with transaction.atomic():
        return _rollup_locked(day)


def _marker_ensure(day: date) -> None:
    if not RolledDay.objects.filter(day=day).exists():
        try:
            with transaction.atomic():
                RolledDay.objects.create(day=day)
        except IntegrityError:
            pass  # another run made it first


def _rollup_locked(day: date) -> RolledDay:
    """Inside a transaction: lock the day's marker (a second rollup of the day waits here), then replace."""
    marker = RolledDay.objects.select_for_update().get(day=day)
    rows = selectors.ledger_rollup(day)
    DailyRollup.objects.filter(day=day).delete()
    DailyRollup.objects.bulk_create(rows, batch_size=1000)
    marker.rolled_at = timezone.now()
    marker.rows = sum(r.requests for r in rows)
    marker.cost_usd = sum((r.cost_usd for r in rows), Decimal(0))
    marker.save(update_fields=["rolled_at", "rows", "cost_usd"])
    return marker


def rollup_recent(days: int | None = None, *, today: date | None = None) -> list[RolledDay]:
    """Re-roll the last `days` complete days (GATEWAY_ROLLUP_REROLL_DAYS), oldest first."""
    days = settings.GATEWAY_ROLLUP_REROLL_DAYS if days is None else days
    today = today or timezone.localdate()
    return [rollup_day(today - timedelta(days=n)) for n in range(days, 0, -1)]


def rollup_since(first: date | None = None) -> list[RolledDay]:
    """Backfill: roll every day from `first` (default: the ledger's oldest row) up to yesterday."""
    first = first or selectors.ledger_oldest_day()
    today = timezone.localdate()
    if first is None:
        return []
    rolled = [rollup_day(first + timedelta(days=n)) for n in range((today - first).days)]
    if len(rolled) > 7 and connection.vendor == "postgresql":  # fresh statistics, or the planner guesses a few rows
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(DailyRollup._meta.db_table)}")
    return rolled


def retention_apply(keep_days: int | None = None, *, today: date | None = None) -> int:
    """Delete raw ledger rows of days older than `keep_days` (GATEWAY_LEDGER_RETENTION_DAYS; 0 keeps them all).
    Each day is rolled up and deleted in one transaction, and the deletion must match the rollup's row count,
    or the day is left whole for the next run. Returns how many rows were deleted."""
    keep_days = settings.GATEWAY_LEDGER_RETENTION_DAYS if keep_days is None else keep_days
    if not keep_days or keep_days <= 0:
        return 0
    today = today or timezone.localdate()
    cutoff = today - timedelta(days=keep_days)
    oldest = selectors.ledger_oldest_day()
    deleted = 0
    while oldest is not None and oldest < cutoff:
        try:
            deleted += _retire_day(oldest)
        except RetentionRace as e:
            log.warning("%s", e)
        oldest += timedelta(days=1)
    return deleted


def _retire_day(day: date) -> int:
    _marker_ensure(day)
    start = selectors.day_start(day)
    with transaction.atomic():
        marker = _rollup_locked(day)
        rows = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1))
        deleted, _ = rows.delete()
        if deleted != marker.rows:
            raise RetentionRace(f"ledger rows of {day} changed during retention ({deleted} vs {marker.rows}); kept")
    if deleted:
        log.info("retention: rolled up and deleted %d ledger rows of %s", deleted, day)
    return deleted


def nightly(*, today: date | None = None) -> dict:
    """The daily job: re-roll recent days, then apply retention. Returns what it did (logged by callers)."""
    rolled = rollup_recent(today=today)
    deleted = retention_apply(today=today)
    return {"rolled": [str(m.day) for m in rolled], "deleted": deleted}
