"""The seeds' mapping tables (accounts/seeds): docs/coming-from.md names every variable and verb of them, each row
is well formed, and the readers of their values (MODEL_MAP, env files, settings) read what the seeds write."""

from pathlib import Path

from accounts.config_seeds import _with_v1
from accounts.seeds import ENV_SEEDS, SEEDS, settings_from, unmapped, used_lines
from accounts.seeds.claude_central_gateway import model_map
from accounts.seeds.common import read_env_file
from accounts.seeds.llm_gateway import VERBS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "coming-from.md").read_text()
KINDS = {"same", "setting", "project", "seed", "always", "none", "info"}


def test_every_variable_and_verb_is_in_its_section_of_the_doc():
    for seed in ENV_SEEDS:
        section = DOC.split(f"\n## {seed.TITLE if seed.NAME != 'coding-gateway' else 'The Coding Gateway'}\n")[1]
        section = section.split("\n## ")[0]
        for var in seed.VARIABLES:
            assert f"| `{var.name}` |" in section and var.counterpart in section, var.name
    for verb, (command, _, _) in VERBS.items():
        assert f"| `{verb}` | `{command}` |" in DOC, verb
    assert {f"`{name}`" for name in SEEDS} <= {w.strip(",.") for w in DOC.split()}


def test_rows_are_well_formed():
    for seed in ENV_SEEDS:
        names = [v.name for v in seed.VARIABLES]
        assert len(names) == len(set(names)), seed.NAME
        for var in seed.VARIABLES:
            assert var.kind in KINDS, var
            assert bool(var.setting) == (var.kind == "setting") and bool(var.field) == (var.kind == "project"), var


def test_model_map_reads_as_claude_central_gateway_does():
    assert model_map("claude-sonnet-4-20250514:gpt-4o, claude-opus:gpt-4-turbo,,plain, :odd") == [
        ("claude-sonnet-4-20250514", "gpt-4o"), ("claude-opus", "gpt-4-turbo"), ("plain", "plain"), (":odd", ":odd")
    ]  # fmt: skip


def test_env_file_comments_quotes_and_export(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# c\nREDIS_URL=          # Redis for caching\nexport A='x # y'\nB=\"q\"\nC=1 # on\nnot a line\n")
    assert read_env_file(path) == {"REDIS_URL": "", "A": "x # y", "B": "q", "C": "1"}


def test_settings_secrets_and_the_warning():
    environ = {"CIRCUIT_BREAKER_TIMEOUT": "60", "RETRY_BACKOFF_BASE": "0.25", "RETRY_ENABLED": "0",
               "GATEWAY_RETRY_MAX_ATTEMPTS": "5", "ADMIN_API_KEY": "admin-secret-123", "ORIGIN_SECRET": "o-secret",
               "ENABLE_REPO_MAP": "0", "ENABLE_MEMORY_LAYER": "1", "PROMETHEUS_ENABLED": "0",
               "RETRY_MAX_ATTEMPTS": "nope"}  # fmt: skip
    assert settings_from(environ) == {"GATEWAY_BREAKER_COOLDOWN_SECONDS": "60.0", "GATEWAY_RETRY_BASE_MS": "250",
                                      "GATEWAY_ADMIN_API_KEY": "admin-secret-123"}  # fmt: skip
    assert unmapped(environ) == ["PROMETHEUS_ENABLED", "ORIGIN_SECRET", "ENABLE_MEMORY_LAYER"]
    lines = "\n".join(used_lines(environ))
    assert "admin-secret-123" not in lines and "o-secret" not in lines and "  ADMIN_API_KEY (Coding Gateway)" in lines


def test_claude_proxy_base_url_gets_one_v1():
    assert _with_v1("https://api.example.com") == "https://api.example.com/v1"
    assert _with_v1("https://api.deepseek.com/v1") == "https://api.deepseek.com/v1"
    assert _with_v1("") is None


def test_a_setting_copied_from_its_seed_name_is_not_reported_as_set_twice():
    """The start copies ADMIN_API_KEY to GATEWAY_ADMIN_API_KEY before start_from_env reports: that copy is not the
    operator setting both names; a different value under Gatehouse's name is, and wins."""
    from accounts import seeds

    copied = {"ADMIN_API_KEY": "k-1", "GATEWAY_ADMIN_API_KEY": "k-1"}
    assert not any("is set too" in line for line in seeds.used_lines(copied))
    both = {"ADMIN_API_KEY": "k-1", "GATEWAY_ADMIN_API_KEY": "k-2"}
    assert any("GATEWAY_ADMIN_API_KEY is set too: it wins" in line for line in seeds.used_lines(both))
