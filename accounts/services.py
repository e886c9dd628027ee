"""Writes behind the admin console and the operator commands (both call these; neither writes on its own).

    key_issue            a client API key with its limits; the secret is returned once, never stored
    key_rotate           a new secret for a key; the old one revoked, or expiring after a grace period
    keys_revoke          bulk revoke
    enabled_set          bulk enable/disable of providers, accounts, routes
    config_apply         the YAML config (see accounts/config.py), idempotent, all or nothing; the sections
                         other packages own (prices: usage) are applied by them on `config_applying`
    account_error_set    an upstream account's last error, written by the request path's breaker
"""

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from . import audit, keys
from .config import FILE_OWNED_FIELDS, Config, ConfigError, config_parse, config_read
from .models import ApiKey, ModelRoute, Project, ProjectOptimization, ProjectRedaction, Provider, ProviderAccount
from .models import RouteTarget, split_aliases
from .signals import config_applying, config_changed



def _config_changed() -> None:
    """Bulk updates send no post_save: announce them by hand (accounts/signals.py does it for single saves)."""
    config_changed.send(sender=None)


# --- client keys ------------------------------------------------------------------------------------------


@transaction.atomic
def key_issue(
    *,
    project: Project,
    name: str,
    expires_at: datetime | None = None,
    allowed_models: str = "",
    **limits,
) -> tuple[ApiKey, str]:
    """keys.key_create plus the optional limits and budgets (rpm_limit, tpm_limit, max_concurrent,
    monthly_budget_usd, daily_budget_usd). The caller shows the secret once and forgets it."""
    unknown = set(limits) - set(KEY_LIMIT_FIELDS)
    if unknown:
        raise TypeError(f"unknown key limits: {', '.join(sorted(unknown))}")
    key, secret = keys.key_create(project=project, name=name)
    key.expires_at = expires_at
    key.allowed_models = allowed_models
    for name_, value in limits.items():
        setattr(key, name_, value)
    key.save(update_fields=["expires_at", "allowed_models", *limits])
    return key, secret


KEY_LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "max_concurrent", "monthly_budget_usd", "daily_budget_usd")


@transaction.atomic
def key_rotate(old: ApiKey, *, grace: timedelta) -> tuple[ApiKey, str]:
    """A new key with the old one's project, name, models, limits and expiry. The old one stops at once (grace 0:
    revoked) or at the end of the grace period (it expires then), so a deploy can switch secrets without a gap."""
    new, secret = key_issue(
        project=old.project, name=old.name, expires_at=old.expires_at, allowed_models=old.allowed_models,
        **{name: getattr(old, name) for name in KEY_LIMIT_FIELDS},
    )
    now = timezone.now()
    if grace:
        old.expires_at = min(old.expires_at or now + grace, now + grace)
        old.save(update_fields=["expires_at"])
    else:
        old.revoked_at = now
        old.save(update_fields=["revoked_at"])
    return new, secret


def keys_revoke(queryset: models.QuerySet) -> int:
    """Revokes the keys not revoked yet; returns how many. Other processes notice within GATEWAY_CACHE_TTL."""
    now = timezone.now()
    audit.bulk_updated(queryset.filter(revoked_at__isnull=True), revoked_at=now)  # an update() sends no signals
    count = queryset.filter(revoked_at__isnull=True).update(revoked_at=now)
    _config_changed()
    return count


def account_error_set(account_id: int, message: str, when: datetime) -> None:
    """What went wrong with an upstream account last (shown in the admin). A plain update: no config change."""
    ProviderAccount.objects.filter(id=account_id).update(last_error=message[:500], last_error_at=when)


def enabled_set(queryset: models.QuerySet, enabled: bool) -> int:
    """Bulk enable/disable of anything with an `enabled` flag: providers, accounts, model routes."""
    audit.bulk_updated(queryset, enabled=enabled)  # an update() sends no signals
    count = queryset.update(enabled=enabled)
    _config_changed()
    return count


# --- config file ------------------------------------------------------------------------------------------

SECTIONS = ("providers", "accounts", "models", "prices", "projects")


@dataclass
class ApplyReport:
    counts: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SECTIONS})
    warnings: list[str] = field(default_factory=list)

    def total(self, state: str) -> int:
        return sum(c[state] for c in self.counts.values())

    def lines(self) -> list[str]:
        lines = [
            f"  {section:<10} {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged"
            for section, c in self.counts.items()
            if sum(c.values())
        ]
        totals = ", ".join(f"{self.total(s)} {s}" for s in ("created", "updated", "unchanged"))
        return lines + [f"Config applied: {totals}."]


def config_apply_file(path, *, environ=None) -> ApplyReport:
    return config_apply(config_read(path), environ=environ)


def config_apply(data, *, environ=None) -> ApplyReport:
    """Make the database match `data` for every object it names (others are left alone; a route's targets are
    replaced by the file's). Validates everything first and writes in one transaction: on ConfigError nothing
    has changed. Applying the same data twice reports nothing created or updated."""
    environ = os.environ if environ is None else environ
    with transaction.atomic():
        known = Provider.objects.values_list("name", flat=True)
        config = config_parse(data, environ=environ, known_providers=known)
        report = ApplyReport(warnings=config.warnings)
        _apply(config, report)
    return report


def _apply(config: Config, report: ApplyReport) -> None:
    count = report.counts
    for i, spec in enumerate(config.providers):
        path = f"providers[{i}]"
        values = {name: getattr(spec, name) for name in FILE_OWNED_FIELDS["provider"]}
        provider, state = _upsert(Provider, {"name": spec.name}, values, path)
        count["providers"][state] += 1
        for j, account_spec in enumerate(spec.accounts):
            count["accounts"][_apply_account(provider, account_spec, f"{path}.accounts[{j}]")] += 1

    providers = {p.name: p for p in Provider.objects.all()}
    for i, spec in enumerate(config.models):
        path = f"models[{i}]"
        values = {name: getattr(spec, name) for name in FILE_OWNED_FIELDS["modelroute"] if name != "targets"}
        route, state = _upsert(ModelRoute, {"alias": spec.alias}, values, path)
        wanted = [(providers[t.provider].pk, t.model, t.priority, t.weight) for t in spec.targets]
        existing = list(route.targets.order_by("id").values_list("provider_id", "remote_model", "priority", "weight"))
        if wanted != existing:
            route.targets.all().delete()
            for j, (provider_id, model, priority, weight) in enumerate(wanted):
                target = RouteTarget(route=route, provider_id=provider_id, remote_model=model, priority=priority,
                                     weight=weight)  # fmt: skip
                _save(target, f"{path}.targets[{j}]", exclude=["route"])
            state = "updated" if state == "unchanged" else state
        count["models"][state] += 1

    # Prices belong to usage, which applies them here, in this transaction (usage/services.py).
    config_applying.send(sender=Config, config=config, counts=count, upsert=_upsert)

    for i, spec in enumerate(config.projects):
        project = Project.objects.filter(slug=spec.slug).first()
        same_models = project is not None and split_aliases(project.allowed_models) == spec.allowed_models
        values = {name: getattr(spec, name) for name in FILE_OWNED_FIELDS["project"]}
        values["allowed_models"] = project.allowed_models if same_models else ", ".join(spec.allowed_models)
        values |= spec.request_logs or {}  # given: the whole setting (absent keys were defaulted); else left alone
        project, state = _upsert(Project, {"slug": spec.slug}, values, f"projects[{i}]")
        if spec.optimize is not None:  # the file describes every setting: absent ones go back to their defaults
            defaults = {f.name: f.get_default() for f in ProjectOptimization._meta.concrete_fields if not f.primary_key}
            values = {k: v for k, v in defaults.items() if k != "project"} | spec.optimize
            changed = _upsert(ProjectOptimization, {"project": project}, values, f"projects[{i}].optimize")[1]
            state = "updated" if state == "unchanged" and changed != "unchanged" else state
        if spec.redaction is not None:  # the same: absent fields go back to off
            values = {"secrets": "off", "pii": "off", "rules": {}} | spec.redaction
            changed = _upsert(ProjectRedaction, {"project": project}, values, f"projects[{i}].redaction")[1]
            state = "updated" if state == "unchanged" and changed != "unchanged" else state
        count["projects"][state] += 1


def _apply_account(provider: Provider, spec, path: str) -> str:
    account = ProviderAccount.objects.filter(provider=provider, name=spec.name).first()
    state = "unchanged"
    if account is None:
        account, state = ProviderAccount(provider=provider, name=spec.name), "created"
    for attr in (a for a in FILE_OWNED_FIELDS["provideraccount"] if a != "credential"):  # (compared below)
        if getattr(account, attr) != getattr(spec, attr):
            setattr(account, attr, getattr(spec, attr))
            state = state if state == "created" else "updated"
    if spec.credential is not None:
        try:
            same = account.credential == spec.credential  # Fernet is randomized: compare the plaintext
        except ValueError:
            same = False
        if not same:
            account.set_credential(spec.credential)
            state = state if state == "created" else "updated"
    if state != "unchanged":
        _save(account, path, exclude=["provider"])
    return state


_FILE_NAMES = {"rpm_limit": "rpm", "tpm_limit": "tpm", "remote_model": "model"}


def _upsert(model, lookup: dict, values: dict, path: str):
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        obj, state = model(**lookup, **values), "created"
    else:
        changed = {k: v for k, v in values.items() if getattr(obj, k) != v}
        if not changed:
            return obj, "unchanged"
        for k, v in changed.items():
            setattr(obj, k, v)
        state = "updated"
    _save(obj, path)
    return obj, state


def _save(obj, path: str, exclude=None) -> None:
    """full_clean catches what the file schema does not (lengths, digits); the error names the file's path."""
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as e:
        problems = [
            f"{path}{'' if name == '__all__' else '.' + _FILE_NAMES.get(name, name)}: {' '.join(messages)}"
            for name, messages in e.message_dict.items()
        ]
        raise ConfigError(problems) from None
    obj.save()


__all__ = ["ConfigError", "config_apply", "config_apply_file", "enabled_set", "key_issue",
           "keys_revoke"]  # fmt: skip
