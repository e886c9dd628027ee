"""The gateways Gatehouse replaces ("seeds"), each as one mapping table: what each of their settings becomes here.

The same tables serve the environment-only start (`start_from_env`, run by bin/run), `migrate_from <seed>`, the
settings read at start (gateway_site/startup.py) and docs/coming-from.md. A seed configured by environment
(claude-central-gateway, coding-gateway) lists its variables as `Var` rows:

    kind "same"      Gatehouse reads the same name itself (ANTHROPIC_API_KEY, REDIS_URL, ...)
    kind "setting"   stands for a Gatehouse setting: copied to `setting` before the settings load (startup.py),
                     unless that name is set too (Gatehouse's own name wins)
    kind "project"   a field of the project the environment start makes (`default`): `field` names the config
                     file's project key (`rpm`) or, as `optimize.<name>`, a ProjectOptimization field
    kind "seed"      read by the seed module's `amend` (providers, routes, client keys)
    kind "always"    a capability Gatehouse always has; turning it off has no counterpart
    kind "info"      nothing to set either way (said in the start's lines)
    kind "none"      no counterpart: named in the one start-up warning when set (a flag set to 0 is not)

A seed configured by a file (claude-proxy's config.json, LLM Gateway's config.yaml) has `recognise(data)` and
`translate(data)`, which turn the file into Gatehouse's own config document (accounts/config.py), so one
validator and one writer serve every source (accounts/config_seeds.py `translate` tries each).

To add a seed: a module here with NAME, TITLE and either VARIABLES + `amend(environ, document)` or `recognise` +
`translate`; one line in SEEDS; a section in docs/coming-from.md. Nothing here imports Django models at module
level: startup.py reads the tables before the settings exist.
"""

from dataclasses import dataclass
from . import claude_central_gateway, claude_proxy, coding_gateway, llm_gateway
from .common import SKIP, Var, flag

SEEDS = {seed.NAME: seed for seed in (claude_central_gateway, coding_gateway, llm_gateway, claude_proxy)}
ENV_SEEDS = tuple(seed for seed in SEEDS.values() if hasattr(seed, "VARIABLES"))
FILE_SEEDS = tuple(seed for seed in SEEDS.values() if hasattr(seed, "translate"))
DEFAULT_PROJECT = "default"  # the project the environment start puts its client keys in (config_seeds)

__all__ = ["SEEDS", "SKIP", "Var", "flag", "environment_document", "settings_from", "used_lines", "unmapped",
           "file_translate", "with_admin_values"]  # fmt: skip


def _known(environ):
    """(seed, var, raw value) for every variable of every environment seed that is set, each name once."""
    seen = set()
    for seed in ENV_SEEDS:
        for var in seed.VARIABLES:
            raw = environ.get(var.name)
            if raw is None or raw.strip() == "" or var.name in seen:
                continue
            seen.add(var.name)
            yield seed, var, raw.strip()


def settings_from(environ) -> dict[str, str]:
    """The Gatehouse settings the environment's seed variables stand for (kind "setting"), as variables to set
    before the settings load. A setting named in the environment itself is left alone."""
    out = {}
    for _seed, var, raw in _known(environ):
        if var.kind != "setting" or var.setting in environ:
            continue
        try:
            value = var.convert(raw, environ) if var.convert else raw
        except ValueError:
            continue  # start_from_env names the bad value; the setting keeps its default
        if value is not SKIP:
            out[var.setting] = str(value)
    return out


@dataclass
class Reading:
    """What the environment's seed variables make: the document's changes, problems, lines to print."""

    problems: list[str]
    used: list[str]
    unmapped: list[str]


def environment_document(environ) -> tuple[dict | None, Reading]:
    """Gatehouse's own environment document (config_seeds.from_environment) amended by every seed's variables."""
    from ..config_seeds import from_environment

    document = from_environment(environ)
    reading = Reading(problems=[], used=used_lines(environ), unmapped=unmapped(environ))
    if document is None:
        return None, reading
    for seed, var, raw in _known(environ):
        if var.kind == "project":
            _set_project_field(document, var, raw, environ, reading.problems)
        elif var.kind == "setting" and var.convert:
            try:
                var.convert(raw, environ)
            except ValueError as e:  # startup.py would keep the setting's default: say so here, once
                reading.problems.append(f"{var.name}={raw!r}: {e}")
    for seed in ENV_SEEDS:
        reading.problems += seed.amend(environ, document)
    return document, reading


def _set_project_field(document: dict, var: Var, raw: str, environ, problems: list[str]) -> None:
    try:
        value = var.convert(raw, environ) if var.convert else raw
    except ValueError as e:
        problems.append(f"{var.name}={raw!r}: {e}")
        return
    if value is SKIP:
        return
    project = project_entry(document, DEFAULT_PROJECT)
    if var.field.startswith("optimize."):
        project.setdefault("optimize", {})[var.field.removeprefix("optimize.")] = value
    else:
        project[var.field] = value


def project_entry(document: dict, slug: str) -> dict:
    projects = document.setdefault("projects", [])
    found = next((p for p in projects if p.get("slug") == slug), None)
    if found is None:
        found = {"slug": slug, "name": slug.capitalize()}
        projects.append(found)
    return found


def used_lines(environ) -> list[str]:
    """One line per seed variable the environment sets, saying what it became (a secret's value never shown).
    The variables Gatehouse reads under the same name are left to the start's own lines."""
    lines = []
    for seed, var, raw in _known(environ):
        if var.kind in ("none", "same") or (var.kind == "always" and flag(raw) is False):
            continue  # "same": Gatehouse's own variables, which the start describes by what they made
        shown = var.name if var.secret else f"{var.name}={raw}"
        # (the start copies a seed's setting variable to Gatehouse's name first: an equal value is that copy)
        overridden = var.kind == "setting" and environ.get(var.setting, raw) != raw
        wins = f" ({var.setting} is set too: it wins)" if overridden else ""
        lines.append(f"  {shown} ({seed.TITLE}) -> {var.counterpart}{wins}")
    return lines


def unmapped(environ) -> list[str]:
    """The set variables Gatehouse has no counterpart for (a flag set to 0 asks for nothing, so it is not one)."""
    names = []
    for _seed, var, raw in _known(environ):
        if var.kind == "none" and not (var.is_flag and flag(raw) is False):
            names.append(var.name)
        elif var.kind == "always" and flag(raw) is False:
            names.append(var.name)
    return names


def file_translate(data):
    """The Gatehouse config document for a seed's config file, else `data` unchanged; and the seed's name."""
    for seed in FILE_SEEDS:
        if seed.recognise(data):
            return seed.translate(data), seed.NAME
    return data, None



PROJECT_KEYS = {"name": "name", "active": "active", "rpm": "rpm_limit", "tpm": "tpm_limit",
                "monthly_budget_usd": "monthly_budget_usd", "daily_budget_usd": "daily_budget_usd",
                "budget_alert_percent": "budget_alert_percent", "allowed_models": "allowed_models"}  # fmt: skip


def with_admin_values(document: dict) -> dict:
    """The document with each project's current values for what it does not name: a config document writes every
    field of a project it names (accounts/services.py), and an environment names only a few. So the variables
    win for their own fields and the admin keeps the rest."""
    from ..config import OPTIMIZE_ALIASES, OPTIMIZE_FLAGS, OPTIMIZE_LISTS, OPTIMIZE_NUMBERS
    from ..models import Project, ProjectOptimization

    for entry in document.get("projects", []):
        project = Project.objects.filter(slug=entry["slug"]).first()
        if project is None:
            continue
        entry["name"] = project.name  # no variable names it: always the admin's
        for key, attr in PROJECT_KEYS.items():
            entry.setdefault(key, getattr(project, attr))
        if "optimize" in entry:
            current = ProjectOptimization.objects.filter(project=project).first()
            names = (*OPTIMIZE_FLAGS, *OPTIMIZE_NUMBERS, *OPTIMIZE_LISTS, *OPTIMIZE_ALIASES, "diff_first_text")
            for name in names if current else ():
                entry["optimize"].setdefault(name, getattr(current, name))
    return document
