"""Management tokens: minted by a command or in the admin (secret shown once), hashed at rest, revocable."""

import re

import pytest
from django.core.management import call_command

from accounts import api_tokens
from accounts.models import AuditEvent, ManagementToken

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r"ghm_[A-Za-z0-9]{48}")


def test_command_prints_the_secret_once_and_keeps_only_a_digest(capsys):
    call_command("create_management_token", "finance-sheet", "--scope", "read")
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert SECRET_RE.fullmatch(secret)
    token = ManagementToken.objects.get(name="finance-sheet")
    assert token.scope == "read" and secret not in (token.digest + token.prefix) and token.prefix == secret[:12]
    assert api_tokens.token_find(secret) == token
    assert api_tokens.token_find(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert api_tokens.token_find("gh_" + secret[4:]) is None  # a gateway-key-shaped secret is never a token
    event = AuditEvent.objects.get(object_type="accounts.managementtoken", object_id=str(token.id))
    assert event.source == "create_management_token" and secret not in str(event.changes)


def test_admin_creates_a_token_shows_it_once_and_revokes_it(admin_client):
    added = admin_client.post("/admin/accounts/managementtoken/add/", {"name": "ci", "scope": "write"})
    assert added.status_code == 302 and "/created/" in added["Location"]
    assert not SECRET_RE.search(added.content.decode())
    shown = admin_client.get(added["Location"])
    secret = SECRET_RE.search(shown.content.decode()).group(0)
    assert "no-store" in shown["Cache-Control"]
    again = admin_client.get(added["Location"])
    assert not SECRET_RE.search(again.content.decode()) and "already shown" in again.content.decode()
    token = api_tokens.token_find(secret)
    assert token is not None and token.scope == "write"
    admin_client.post("/admin/accounts/managementtoken/", {"action": "revoke", "_selected_action": [token.id]})
    assert api_tokens.token_find(secret) is None
    assert ManagementToken.objects.count() == 1  # the reloads created nothing
