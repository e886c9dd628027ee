"""Issue 14, operator mistakes and exposure: a placeholder encryption key fails at start-up, the data dir and the
SQLite file are owner-only, reloading the "key created" page creates nothing, /metrics is loopback-only without a
token, failed admin logins lock out, and /docs works offline."""

import os
import re
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse

from accounts import keys
from accounts.models import ApiKey, Project
from tests.conftest import ROOT, start_gateway, stop_gateway

SECRET_RE = re.compile(r"gh_[A-Za-z0-9]{48}")
GENERATED = ("SECRET_KEY", "GATEWAY_ENCRYPTION_KEY", "GATEWAY_KEY_PEPPER")


def manage(args: list[str], **env) -> subprocess.CompletedProcess:
    """manage.py in a fresh process, on SQLite in the given data dir unless told otherwise, umask 022."""
    full_env = {k: v for k, v in os.environ.items() if k not in GENERATED and not k.endswith("_FILE")}
    full_env.update({"DATABASE_URL": "", "REDIS_URL": "", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- 1. a placeholder GATEWAY_ENCRYPTION_KEY ------------------------------------------------------------


def test_placeholder_encryption_key_fails_manage_py_check_with_a_hint(tmp_path):
    for placeholder in ("change-me", "x" * 44):
        result = manage(["check"], GATEWAY_DATA_DIR=str(tmp_path), GATEWAY_ENCRYPTION_KEY=placeholder)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert "ImproperlyConfigured" in output and "GATEWAY_ENCRYPTION_KEY is not a valid Fernet key" in output
        assert 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"' in output
        assert placeholder not in output  # the (wrong) key itself is not echoed

    from cryptography.fernet import Fernet

    valid = manage(["check"], GATEWAY_DATA_DIR=str(tmp_path), GATEWAY_ENCRYPTION_KEY=Fernet.generate_key().decode())
    assert valid.returncode == 0, valid.stdout + valid.stderr


def test_placeholder_secret_key_and_pepper_fail_start_up_naming_the_variable(tmp_path):
    """Issue 21: .env.example's change-me for SECRET_KEY or GATEWAY_KEY_PEPPER stops manage.py and the server
    with one message naming the variable (every faulty one at once), not a traceback and not a running gateway."""
    for name in ("SECRET_KEY", "GATEWAY_KEY_PEPPER"):
        for placeholder in ("change-me", "CHANGE_ME_to_something_random", "short-secret", "ab" * 20):
            result = manage(["check"], GATEWAY_DATA_DIR=str(tmp_path), **{name: placeholder})
            output = result.stdout + result.stderr
            assert result.returncode != 0, (name, placeholder, output)
            assert f"ImproperlyConfigured: {name} is a placeholder" in output, output
            assert "Traceback" not in output
            assert placeholder == "change-me" or placeholder not in output  # the value is not echoed
    every = manage(["migrate", "-v0"], GATEWAY_DATA_DIR=str(tmp_path), **{name: "change-me" for name in GENERATED})
    lines = [line.split(" is ")[0] for line in (every.stdout + every.stderr).splitlines() if " is " in line]
    assert every.returncode != 0 and lines == ["ImproperlyConfigured: SECRET_KEY", "GATEWAY_ENCRYPTION_KEY",
                                               "GATEWAY_KEY_PEPPER"], every.stderr  # fmt: skip
    with pytest.raises(RuntimeError) as refused:  # the server as bin/serve runs it exits before listening
        start_gateway({"GATEWAY_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "GATEWAY_KEY_PEPPER": "change-me"},
                      tmp_dir=tmp_path)  # fmt: skip
    assert "ImproperlyConfigured: GATEWAY_KEY_PEPPER is a placeholder" in str(refused.value)
    assert "Traceback" not in str(refused.value)
    fine = manage(["check"], GATEWAY_DATA_DIR=str(tmp_path), SECRET_KEY=secrets.token_urlsafe(50),
                  GATEWAY_KEY_PEPPER=secrets.token_urlsafe(32))  # fmt: skip
    assert fine.returncode == 0, fine.stdout + fine.stderr


# --- 2. data dir, SQLite file and generated secrets are owner-only ----------------------------------------


def test_new_data_dir_sqlite_file_and_generated_secrets_are_owner_only(tmp_path):
    data = tmp_path / "fresh" / "data"
    write = "from django.db import connection; c = connection.cursor(); c.execute('create table t (x int)')"
    result = manage(["shell", "-c", write], GATEWAY_DATA_DIR=str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert mode(data) == 0o700
    database = data / "gatehouse.sqlite3"
    assert database.stat().st_size > 0 and mode(database) == 0o600
    for companion in (data / "gatehouse.sqlite3-wal", data / "gatehouse.sqlite3-shm"):
        if companion.exists():
            assert mode(companion) == 0o600, companion
    for name in GENERATED:
        assert mode(data / f".{name.lower()}") == 0o600, name


def test_existing_world_readable_files_are_tightened_but_an_operators_dir_is_kept(tmp_path):
    data = tmp_path / "mounted"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    database = data / "gatehouse.sqlite3"
    database.touch()
    database.chmod(0o644)
    kept = data / ".gateway_key_pepper"
    kept.write_text("an-old-pepper")
    kept.chmod(0o644)
    result = manage(["check"], GATEWAY_DATA_DIR=str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert mode(database) == 0o600 and mode(kept) == 0o600
    assert mode(data) == 0o755


# --- 3. the "API key created" page: post/redirect/get ------------------------------------------------------


def key_form(project, name):
    return {"project": project.pk, "name": name, "expires_at_0": "", "expires_at_1": "", "allowed_models": "",
            "rpm_limit": "", "tpm_limit": ""}  # fmt: skip


@pytest.mark.django_db
def test_reloading_the_key_created_page_creates_no_key_and_never_reshows_the_secret(admin_client):
    project = Project.objects.create(slug="prg", name="PRG")
    created = admin_client.post(reverse("admin:accounts_apikey_add"), key_form(project, "ci-bot"))
    assert created.status_code == 302
    location = created["Location"]
    key = ApiKey.objects.get(project=project)
    assert location == reverse("admin:accounts_apikey_created", args=[key.pk, location.rstrip("/").rsplit("/", 1)[1]])
    assert not SECRET_RE.search(created.content.decode())
    session = str(admin_client.session.items())
    assert "gatehouse_new_secrets_apikey" in session and not SECRET_RE.search(session)  # waiting, encrypted

    first = admin_client.get(location)
    assert first.status_code == 200 and "no-store" in first["Cache-Control"]
    (secret,) = set(SECRET_RE.findall(first.content.decode()))
    assert key.digest == keys.digest(secret)
    assert "gatehouse_new_secrets_apikey" not in admin_client.session  # taken out as it was shown

    for _ in range(2):  # reload, twice
        again = admin_client.get(location)
        html = again.content.decode()
        assert again.status_code == 200 and "no-store" in again["Cache-Control"]
        assert "already shown" in html and key.prefix in html
        assert secret not in html and not SECRET_RE.search(html)
    assert ApiKey.objects.filter(project=project).count() == 1

    forged = admin_client.get(reverse("admin:accounts_apikey_created", args=[key.pk, "not-a-token"]))
    assert forged.status_code == 200 and not SECRET_RE.search(forged.content.decode())


@pytest.mark.django_db
def test_key_created_page_needs_a_staff_session_and_expires(admin_client, client, monkeypatch):
    project = Project.objects.create(slug="prg-expiry", name="PRG expiry")
    created = admin_client.post(reverse("admin:accounts_apikey_add"), key_form(project, "late"))
    location = created["Location"]

    anonymous = client.get(location)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]

    later = time.time() + 301
    monkeypatch.setattr(time, "time", lambda: later)
    expired = admin_client.get(location)
    assert "already shown" in expired.content.decode() and not SECRET_RE.search(expired.content.decode())
    assert ApiKey.objects.filter(project=project).count() == 1


# --- 4. /metrics without METRICS_TOKEN: loopback only ------------------------------------------------------


@override_settings(METRICS_TOKEN="")
def test_metrics_without_token_answer_loopback_only():
    client = Client()
    for address in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        response = client.get("/metrics", REMOTE_ADDR=address)
        assert response.status_code == 200, address
        assert b"python_info" in response.content or b"# HELP" in response.content
    for address in ("203.0.113.9", "10.0.0.5", "192.168.1.20", "::ffff:10.0.0.5", "2001:db8::1", ""):
        response = client.get("/metrics", REMOTE_ADDR=address)
        assert response.status_code == 403, address
        assert b"# HELP" not in response.content and b"METRICS_TOKEN" in response.content
    # A proxy on this host (or a forged header that daphne --proxy-headers believes) does not make a caller local.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", headers={header: "203.0.113.9"})
        assert response.status_code == 403, header


@override_settings(METRICS_TOKEN="s3cret-metrics")
def test_metrics_with_token_answer_its_bearer_from_anywhere():
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", headers={"Authorization": "Bearer s3cret-metrics"})
    assert response.status_code == 200


# --- 5. admin login throttling -----------------------------------------------------------------------------


def login(client, username, password, address="198.51.100.7"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password},
                       REMOTE_ADDR=address)  # fmt: skip


@pytest.fixture
def staff():
    password = secrets.token_urlsafe(16)
    user = User.objects.create_superuser(f"throttle-{secrets.token_hex(6)}", password=password)  # unique: Redis
    return user.username, password


@pytest.mark.django_db
@override_settings(GATEWAY_LOGIN_FAILURE_LIMIT=3, GATEWAY_LOGIN_LOCKOUT_SECONDS=2)
def test_failed_admin_logins_lock_out_even_the_right_password(staff):
    username, password = staff
    client = Client()
    ok = login(client, username, password)
    assert ok.status_code == 302 and ok["Location"] == "/admin/"
    client = Client()
    for _ in range(3):
        bad = login(client, username, "wrong-password")
        assert bad.status_code == 200 and "Please enter the correct username and password" in bad.content.decode()

    refused = login(client, username, password)
    html = refused.content.decode()
    assert refused.status_code == 200 and "Too many failed logins for this account. Try again in" in html
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still not logged in

    # The lock is per username and address: the same user from elsewhere, and others from here, still log in.
    assert login(Client(), username, password, address="198.51.100.8").status_code == 302

    time.sleep(2.5)  # the lockout ends
    assert login(client, username, password).status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
@override_settings(GATEWAY_LOGIN_FAILURE_LIMIT=2, GATEWAY_LOGIN_LOCKOUT_SECONDS=60)
def test_failures_from_many_addresses_lock_the_username(staff):
    username, password = staff
    for n in range(8):  # 4 x the limit, each from its own (say, forged) address
        assert login(Client(), username, "wrong-password", address=f"203.0.113.{n}").status_code == 200
    refused = login(Client(), username, password, address="203.0.113.200")
    assert refused.status_code == 200 and "Too many failed logins" in refused.content.decode()


# --- 6. /docs offline: Swagger UI from the gateway's own /static/ ------------------------------------------


def test_docs_load_swagger_ui_from_local_static_files(tmp_path, django_db_setup):
    collect = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert collect.returncode == 0, collect.stderr
    server = start_gateway({"METRICS_TOKEN": ""}, tmp_dir=tmp_path)
    try:
        docs = httpx.get(server.url + "/docs")
        assert docs.status_code == 200
        html = docs.text
        assert "cdn." not in html and "https://" not in html and "http://" not in html
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith(".css") for a in assets)
        for asset in assets:
            assert asset.startswith("/static/"), asset
            response = httpx.get(server.url + asset)
            assert response.status_code == 200 and response.content, asset
        assert httpx.get(server.url + "/openapi.json").status_code == 200

        # The real server: loopback gets /metrics, a forged X-Forwarded-For does not.
        assert httpx.get(server.url + "/metrics").status_code == 200
        assert httpx.get(server.url + "/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 403
    finally:
        stop_gateway(server)
