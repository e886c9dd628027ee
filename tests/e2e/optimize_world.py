"""Helpers for the cost-optimization tests: a new project with its own optimization settings and a key on it
(a fresh key, so the server's key cache cannot hold older settings), and the fake's requests made by a test."""

import uuid

from tests.e2e import policy_world as pw


def key_with(**settings) -> str:
    from accounts.models import ProjectOptimization

    project = pw.project()
    ProjectOptimization.objects.create(project=project, **settings)
    return pw.key(project)


def marker() -> str:
    return uuid.uuid4().hex[:12]


def upstream_calls(fake, mark: str) -> list[dict]:
    """The fake's recorded requests whose body mentions `mark`."""
    return [r for r in list(fake.requests) if mark in str(r.get("body"))]
