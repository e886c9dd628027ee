"""GATEWAY_CONFIG's authority (issue 14): the admin shows, on every object the file names, which fields the file
owns and that edits to them are reverted at the next start; objects the file does not name carry no such note;
a missing ${VAR} names the variable."""

import pytest
from django.test import override_settings
from django.urls import reverse

from accounts.config import ConfigError, config_parse
from accounts.models import ModelRoute, Project, Provider, ProviderAccount
from accounts.services import config_apply_file

CONFIG = """
providers:
  - name: filed
    kind: openai
    base_url: https://api.example.com/v1
    accounts:
      - name: main
        api_key_env: FILED_KEY
models:
  - alias: filed-model
    targets: [{provider: filed, model: gpt-x}]
projects:
  - slug: filed-project
    name: Filed
"""


@pytest.fixture
def config_file(tmp_path, monkeypatch, db):
    monkeypatch.setenv("FILED_KEY", "sk-filed-credential")
    path = tmp_path / "gatehouse.yaml"
    path.write_text(CONFIG)
    config_apply_file(str(path))
    with override_settings(GATEWAY_CONFIG=str(path)):
        yield path


def _change_page(admin_client, obj):
    meta = obj._meta
    return admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))


def test_objects_the_file_names_show_its_authority(admin_client, config_file):
    owned = [
        (Provider.objects.get(name="filed"), "base_url"),
        (ProviderAccount.objects.get(name="main", provider__name="filed"), "weight"),
        (ModelRoute.objects.get(alias="filed-model"), "strategy"),
        (Project.objects.get(slug="filed-project"), "rpm_limit"),
    ]
    for obj, field in owned:
        page = _change_page(admin_client, obj).content.decode()
        assert "is defined in the config file" in page and str(config_file) in page, type(obj)
        assert "will be set back to the file" in page and field in page
        assert "Set by GATEWAY_CONFIG" in page  # on the owned fields' help text


def test_objects_the_file_does_not_name_carry_no_note(admin_client, config_file):
    other = Provider.objects.create(name="admin-made", kind="openai", base_url="https://x.example.com/v1")
    page = _change_page(admin_client, other).content.decode()
    assert "is defined in the config file" not in page and "Set by GATEWAY_CONFIG" not in page


def test_without_gateway_config_no_note(admin_client, config_file):
    with override_settings(GATEWAY_CONFIG=""):
        page = _change_page(admin_client, Provider.objects.get(name="filed")).content.decode()
    assert "is defined in the config file" not in page


def test_a_missing_variable_is_named():
    data = {"providers": [{"name": "p", "kind": "openai", "base_url": "https://${GATEWAY_TEST_MISSING_HOST}/v1"}]}
    with pytest.raises(ConfigError) as caught:
        config_parse(data, environ={})
    assert "GATEWAY_TEST_MISSING_HOST" in str(caught.value) and "providers[0].base_url" in str(caught.value)


def test_docker_compose_mounts_a_config_dir_and_applies_gateway_config():
    import yaml

    from tests.conftest import ROOT

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("migrate", "web", "worker", "beat"):
        assert "./config:/config:ro" in compose["services"][name]["volumes"], name
    command = " ".join(compose["services"]["migrate"]["command"])
    assert 'apply_config "$$GATEWAY_CONFIG"' in command  # $$: compose passes one $ to the shell
    assert "GATEWAY_CONFIG=/config/gatehouse.yaml" in (ROOT / ".env.example").read_text()
