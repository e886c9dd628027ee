"""README "Quick start" with a config file, run as written (issue 21): `OPENAI_API_KEY=sk-... GATEWAY_CONFIG=
gatehouse.yaml bin/run`, with the README's own gatehouse.yaml and bin/run's own manage.py steps, on a fresh embedded
installation. The file alone decides: the environment adds no provider or route (its `claude-*haiku*` used to
beat the file's `claude-*` and send Claude Code's background calls to api.openai.com)."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import anthropic
import openai
import pytest
import yaml

from tests.conftest import start_gateway, stop_gateway

from .conftest import FAKE_KEY

ROOT = Path(__file__).resolve().parents[2]
QUICK_START_LINE = "OPENAI_API_KEY=sk-... GATEWAY_CONFIG=gatehouse.yaml bin/run"
# Variables a developer's shell may hold that the Quick start line does not set.
FOREIGN = ("DATABASE_URL", "REDIS_URL", "GATEWAY_CONFIG", "GATEWAY_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
           "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_SMALL_MODEL")  # fmt: skip


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    return text[start : text.index("\n## ", start + 1)]


def bin_run_steps() -> list[list[str]]:
    """The manage.py commands bin/run runs, in its order (bin/run then execs bin/serve)."""
    steps = []
    for line in (ROOT / "bin" / "run").read_text().splitlines():
        if line.startswith(".venv/bin/python manage.py "):
            steps.append(shlex.split(line.split("#")[0])[2:])
    assert ["start_from_env"] in steps and ["bootstrap"] in steps, steps
    return steps


def manage(args: list[str], env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def quick_start(fake_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quick-start")
    section = readme_section("Quick start")
    assert f"\n{QUICK_START_LINE}\n" in section  # the line tested here is the README's
    config = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    for provider in config["providers"]:  # the only change: the upstream is the fake, not api.openai.com
        provider["base_url"] = fake_upstream.openai_url
    (tmp / "gatehouse.yaml").write_text(yaml.safe_dump(config))

    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env.update(dict(word.split("=", 1) for word in QUICK_START_LINE.split()[:-1]))
    env.update({"OPENAI_API_KEY": FAKE_KEY, "GATEWAY_CONFIG": str(tmp / "gatehouse.yaml"),  # the file's place
                "GATEWAY_DATA_DIR": str(tmp / "data"), "DATABASE_URL": "", "REDIS_URL": ""})  # fmt: skip
    outputs = {args[0]: manage(args, env).stdout for args in bin_run_steps()}
    server = start_gateway(extra_env=env, tmp_dir=tmp)
    yield server, outputs, env
    stop_gateway(server)


def test_quick_start_config_file_alone_routes_claude_codes_models(quick_start, fake_upstream):
    server, outputs, env = quick_start
    # Before any request (so that nothing can reach api.openai.com): the file's provider is the only one.
    accounts = json.loads(manage(["list_accounts", "--json"], env).stdout)["accounts"]
    assert {a["provider"] for a in accounts} == {"openai-main"}
    assert "GATEWAY_CONFIG is set" in outputs["start_from_env"] and "provider openai" not in outputs["start_from_env"]

    lines = outputs["bootstrap"].splitlines()
    demo_key = lines[lines.index("Project 'demo' created with an API key (shown only now):") + 1]
    claude = anthropic.Anthropic(base_url=server.url, api_key=demo_key, max_retries=0)
    for model in ("claude-haiku-4-5-20251001", "claude-sonnet-4-5"):  # Claude Code's background and main models
        message = claude.messages.create(model=model, max_tokens=20,
                                         messages=[{"role": "user", "content": f"SAY: {model}"}])  # fmt: skip
        assert message.content[0].text == model
        sent = fake_upstream.requests[-1]
        assert (sent["path"], sent["body"]["model"]) == ("/v1/chat/completions", "gpt-4.1")  # the file's claude-*
    gpt = openai.OpenAI(base_url=server.url + "/v1", api_key=demo_key, max_retries=0)
    assert gpt.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "SAY: g"}]).choices
    assert fake_upstream.requests[-1]["body"]["model"] == "gpt-4.1-mini"


def test_config_file_start_after_an_environment_only_start_names_the_routes_left(tmp_path):
    """The README's path from "Start from the environment only" to a config file: the routes the environment
    made stay (the admin owns them now) and every start names them; GATEWAY_API_KEY is still accepted."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env.update({"GATEWAY_DATA_DIR": str(tmp_path / "data"), "OPENAI_API_KEY": "sk-not-used-here"})
    manage(["migrate", "--noinput", "-v0"], env)
    first = manage(["start_from_env"], env).stdout
    assert "  route claude-*haiku* -> openai, gpt-4o-mini" in first  # it says what it made
    config = tmp_path / "gatehouse.yaml"
    config.write_text("providers: [{name: openai-main, preset: openai, api_key_env: OPENAI_API_KEY}]\n"
                      "models: [{alias: claude-*, targets: [{provider: openai-main, model: gpt-4.1}]}]\n")  # fmt: skip
    later = manage(["start_from_env"], {**env, "GATEWAY_CONFIG": str(config), "GATEWAY_API_KEY": "team-key-0123"})
    assert "GATEWAY_CONFIG is set" in later.stdout
    assert "still take the models they match: claude-*haiku*, gpt-*, haiku, o1*, o3*, o4*, opus, sonnet." in (
        " ".join(later.stdout.split())
    )
    assert "client key GATEWAY_API_KEY in project default" in later.stdout and "route " not in later.stdout
