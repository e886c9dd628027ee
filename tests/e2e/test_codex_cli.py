"""The Codex CLI (npm @openai/codex) in non-interactive mode (`codex exec --json`) against the real gateway and
the fake upstream: a plain answer, a shell command run through its own tool whose output goes back to the
model, and a multi-turn session (`codex exec resume --last`), to both upstream kinds.

Over the WebSocket too (`setups`): Codex's built-in provider pointed at the gateway (`openai_base_url`, the key
saved with `codex login --with-api-key`) and a custom provider with `supports_websockets = true`; the gateway's
access log shows the socket was used and HTTP was not (no reconnect, no fallback).

Model names choose Codex's request format (its built-in catalog): `gw-openai` is unknown to Codex (fallback
metadata: function tools exec_command, write_stdin, ..., a `namespace` of sub-agent tools and web_search) and
routes to the OpenAI-compatible fake; `gpt-5.5` is a catalog model (adds the freeform `apply_patch` tool and a
client-side `tool_search`) and routes, through the world's `gpt-*` route, to the Anthropic fake; `gpt-6.2-sol`
is the catalog's default, which uses the "lite" format (every tool inside namespaces in an additional_tools
input item, a JavaScript `exec` tool). A provider of kind `openai_responses` (the fake's own /v1/responses)
gets Codex's requests unchanged.

tests/fixtures/codex/requests/ holds the requests Codex sent to the fake directly (what it sends any Responses server);
`test_fixtures_still_match_what_codex_sends` checks they are current, and rewrites them with
CODEX_RECORD_FIXTURES=1. The CI installs the CLI (.ci/run): there this module must not skip.
"""

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.sessions.record_codex import CONFIG

from .conftest import FAKE_KEY

CODEX = shutil.which("codex")
if CODEX is None:
    if os.environ.get("CI"):
        raise RuntimeError("the Codex CLI is missing: .ci/run installs it with npm")
    pytest.skip("the Codex CLI is not installed (npm install -g @openai/codex)", allow_module_level=True)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "codex" / "requests"
SHELL_PROMPT = 'USE_TOOL: exec_command {"cmd": "echo codex-was-here > proof.txt && cat proof.txt"}'
LITE_PROMPT = (
    "USE_TOOL: exec const r = await tools.exec_command({cmd: 'echo lite-was-here > proof.txt && cat proof.txt'});"
    " text(r.output);"
)
SANITIZED_KEY = "sk-gw-test"

both = pytest.mark.parametrize("model", ["gw-openai", "gpt-5.5"])


@dataclass
class Run:
    events: list[dict]
    stderr: str
    returncode: int

    def messages(self) -> list[str]:
        return [e["item"]["text"] for e in self.events if _item_type(e) == "agent_message"]

    def commands(self) -> list[dict]:
        return [
            e["item"] for e in self.events if e.get("type") == "item.completed" and _item_type(e) == "command_execution"
        ]

    def errors(self) -> list[str]:
        found = [e["item"]["message"] for e in self.events if _item_type(e) == "error"]
        return found + [e.get("message", "") for e in self.events if e.get("type") in ("error", "turn.failed")]


def _item_type(event: dict) -> str | None:
    return (event.get("item") or {}).get("type") if event.get("type") == "item.completed" else None


class Codex:
    """One Codex home (config, sessions) and working directory; `exec` runs one non-interactive turn."""

    def __init__(self, root: Path, base_url: str, key: str, model: str, config: str = CONFIG):
        self.home, self.work = root / "home", root / "work"
        self.codex_home = self.home / ".codex"
        self.codex_home.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(exist_ok=True)
        self.key = key
        (self.codex_home / "config.toml").write_text(
            config.format(model=model, base_url=base_url, provider="gateway", env_key="GATEWAY_API_KEY")
        )

    def exec(self, prompt: str, *, resume: bool = False) -> Run:
        args = [CODEX, "exec", *(["resume", "--last"] if resume else []), "--skip-git-repo-check", "--json", prompt]
        proc = self._run(args, stdin=subprocess.DEVNULL)
        events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        return Run(events, proc.stderr, proc.returncode)

    def login(self) -> None:
        """The built-in provider's key, saved as `codex login --with-api-key` saves it (README "Use with Codex")."""
        proc = self._run([CODEX, "login", "--with-api-key"], input=self.key)
        assert proc.returncode == 0, proc.stderr

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "OPENAI_"))}
        env.update(HOME=str(self.home), CODEX_HOME=str(self.codex_home), GATEWAY_API_KEY=self.key)
        return subprocess.run(
            args, cwd=self.work, env=env, capture_output=True, text=True, timeout=120, check=False, **kwargs
        )  # fmt: skip


# Codex's built-in `openai` provider pointed at the gateway: it opens ws://.../v1/responses first (proxy/ws.py).
BUILTIN_CONFIG = """model = "{model}"
openai_base_url = "{base_url}"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
"""
# A custom provider that asks for the WebSocket (its retries at 0, as in CONFIG: a failed socket falls back at once).
WS_CONFIG = CONFIG.replace('wire_api = "responses"\n', 'wire_api = "responses"\nsupports_websockets = true\n')
SETUPS = {"http": CONFIG, "builtin": BUILTIN_CONFIG, "custom-ws": WS_CONFIG}
setups = pytest.mark.parametrize("setup", list(SETUPS))


def gateway_codex(world, tmp_path, model: str, setup: str = "http") -> Codex:
    codex = Codex(tmp_path, f"{world.url}/v1", world.keys["alpha"], model, config=SETUPS[setup])
    if setup == "builtin":
        codex.login()
    return codex


class GatewayLog:
    """The gateway's access log from now on: which transport Codex used."""

    def __init__(self, world, setup: str):
        self.server, self.start, self.setup = world.server, len(world.server.log()), setup

    def lines(self) -> str:
        return self.server.log()[self.start :]

    def assert_transport(self, run: Run) -> None:
        """Over the WebSocket, only it: no reconnect, no HTTP fallback."""
        log = self.lines()
        if self.setup == "http":
            assert '"POST /v1/responses"' in log and "WSCONNECT" not in log, log
            return
        assert "Reconnecting" not in run.stderr and "Falling back" not in run.stderr, run.stderr
        assert '"WSCONNECT /v1/responses"' in log and '"POST /v1/responses"' not in log, log


def upstream_text(request: dict) -> str:
    return json.dumps(request["body"], ensure_ascii=False)


# --- through the gateway ------------------------------------------------------------------------------------


@both
def test_plain_answer(world, tmp_path, model):
    world.fake.state.reset()
    run = gateway_codex(world, tmp_path, model).exec("SAY: hello from codex")
    assert run.returncode == 0, run.stderr
    assert run.messages() == ["hello from codex"]
    (upstream,) = world.upstream_requests()
    assert upstream["path"] == ("/v1/chat/completions" if model == "gw-openai" else "/v1/messages")
    assert "exec_command" in upstream_text(upstream)  # Codex's shell tool reached the model


@setups
@both
def test_a_shell_command_runs_and_its_output_goes_back(world, tmp_path, model, setup):
    world.fake.state.reset()
    log = GatewayLog(world, setup)
    codex = gateway_codex(world, tmp_path, model, setup)
    run = codex.exec(SHELL_PROMPT)
    assert run.returncode == 0, run.stderr
    (command,) = run.commands()
    assert "echo codex-was-here" in command["command"] and command["exit_code"] == 0
    assert (codex.work / "proof.txt").read_text() == "codex-was-here\n"
    first, second = world.upstream_requests()
    assert "codex-was-here" not in json.dumps(_tool_results(first))
    results = _tool_results(second)
    assert len(results) == 1 and "codex-was-here" in results[0]  # the command's output went back to the model
    assert run.messages()[-1].startswith("Done: ")  # the fake's answer to a tool result
    log.assert_transport(run)


def _tool_results(request: dict) -> list[str]:
    body = request["body"]
    if request["path"] == "/v1/chat/completions":
        return [m["content"] for m in body["messages"] if m["role"] == "tool"]
    blocks = [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
    return [json.dumps(b["content"]) for b in blocks if b["type"] == "tool_result"]


def test_apply_patch_freeform_tool(world, tmp_path):
    """R-3: the freeform apply_patch tool goes upstream as a one-string function; the call comes back to Codex
    as a custom_tool_call whose input is the patch itself, which Codex applies."""
    world.fake.state.reset()
    codex = gateway_codex(world, tmp_path, "gpt-5.5")
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+patched by codex\n*** End Patch\n"
    run = codex.exec("USE_TOOL: apply_patch " + json.dumps({"input": patch}))
    assert run.returncode == 0, run.stderr
    assert (codex.work / "hello.txt").read_text() == "patched by codex\n"
    assert run.messages()[-1].startswith("Done: ")
    first, second = world.upstream_requests()
    (tool,) = [t for t in first["body"]["tools"] if t["name"] == "apply_patch"]
    assert tool["input_schema"]["required"] == ["input"]
    calls = [b for m in second["body"]["messages"] if isinstance(m["content"], list) for b in m["content"]]
    assert {"type": "tool_use", "id": "toolu_fake_1", "name": "apply_patch", "input": {"input": patch}} in calls


@setups
@both
def test_multi_turn_session(world, tmp_path, model, setup):
    world.fake.state.reset()
    log = GatewayLog(world, setup)
    codex = gateway_codex(world, tmp_path, model, setup)
    first = codex.exec("SAY: the first answer")
    second = codex.exec("SAY: the second answer", resume=True)
    assert first.messages() == ["the first answer"] and second.messages() == ["the second answer"], second.stderr
    history = upstream_text(world.upstream_requests()[-1])
    assert (
        history.index("SAY: the first answer")
        < history.index('the first answer"')
        < history.index("SAY: the second answer")
    )
    log.assert_transport(second)


def test_default_model_lite_format(world, tmp_path):
    """Codex's default catalog model sends every tool inside namespaces (the "lite" format)."""
    world.fake.state.reset()
    run = gateway_codex(world, tmp_path, "gpt-6.2-sol").exec("SAY: lite hello")
    assert run.returncode == 0, run.stderr
    assert run.messages() == ["lite hello"]
    (upstream,) = world.upstream_requests()
    offered = {tool["name"] for tool in upstream["body"]["tools"]}
    assert {"exec", "wait", "spawn_agent"} <= offered  # the namespaces' tools, one by one


def test_lite_format_runs_a_command_through_its_javascript_exec_tool(world, tmp_path):
    """The freeform, namespaced `exec` tool (R-3): its call goes back as a custom_tool_call in namespace
    `functions`, Codex runs the script, and the script's output goes back to the model."""
    world.fake.state.reset()
    codex = gateway_codex(world, tmp_path, "gpt-6.2-sol")
    run = codex.exec(LITE_PROMPT)
    assert run.returncode == 0, run.stderr
    assert (codex.work / "proof.txt").read_text() == "lite-was-here\n"
    assert run.messages()[-1].startswith("Done: ")
    second = world.upstream_requests()[-1]
    assert "lite-was-here" in json.dumps(_tool_results(second))


@setups
def test_an_upstream_error_ends_the_turn_with_the_error(world, tmp_path, setup):
    log = GatewayLog(world, setup)
    run = gateway_codex(world, tmp_path, "gw-openai", setup).exec("FAIL: 400")
    assert run.returncode != 0 and not run.messages()
    assert any("Invalid request" in message or "400" in message for message in run.errors()), run.events
    if setup != "http":
        assert '"POST /v1/responses"' not in log.lines()  # the error came over the socket: no fallback


def test_a_responses_upstream_gets_codex_requests_unchanged(world, tmp_path, django_db_blocker):
    """Provider kind openai_responses: Codex's request goes through with only the model name swapped."""
    from .policy_world import provider, route, wait_for_config

    with django_db_blocker.unblock():
        alias = route((provider(world.fake, kind="openai_responses", base_url=world.fake.openai_url), "fake-gpt", 0))
    wait_for_config(world.url, world.keys["alpha"], alias)
    world.fake.state.reset()
    codex = gateway_codex(world, tmp_path, alias)
    run = codex.exec(SHELL_PROMPT)
    assert run.returncode == 0, run.stderr
    assert (codex.work / "proof.txt").read_text() == "codex-was-here\n" and run.messages()[-1].startswith("Done: ")
    first, second = world.upstream_requests()
    assert first["path"] == "/v1/responses" and first["body"]["model"] == "fake-gpt"
    assert {"type": "web_search", "external_web_access": True} in first["body"]["tools"]  # hosted tools kept
    assert second["body"]["input"][-1]["type"] == "function_call_output"
    assert "codex-was-here" in second["body"]["input"][-1]["output"]


# --- what Codex sends: the fixtures -------------------------------------------------------------------------

SCENARIOS = {  # fixture name -> (model, prompts; a second prompt resumes the session)
    "shell": ("gpt-5.5", [SHELL_PROMPT]),
    "resume": ("gw-openai", ["SAY: the first answer", "SAY: the second answer"]),
    "lite": ("gpt-6.2-sol", [LITE_PROMPT]),
}


def record(fake, tmp_path) -> dict[str, dict]:
    """Every scenario against the fake upstream directly: name-N -> the N-th request, sanitized."""
    captured = {}
    for name, (model, prompts) in SCENARIOS.items():
        root = tmp_path / name
        codex = Codex(root, fake.openai_url, FAKE_KEY, model)
        fake.state.reset()
        for i, prompt in enumerate(prompts):
            run = codex.exec(prompt, resume=i > 0)
            assert run.returncode == 0, run.stderr
        requests = [r for r in fake.requests if r["path"] == "/v1/responses"]
        for n, request in enumerate(requests, 1):
            captured[f"{name}-{n}"] = sanitize(request, root)
    return captured


def sanitize(request: dict, root: Path) -> dict:
    text = json.dumps(
        {
            "client": "codex-cli",
            "client_version": _version(),
            "method": request["method"],
            "path": request["path"],
            "query": request["query"],
            "headers": {k: v for k, v in request["headers"].items() if k not in ("host", "content-length")},
            "body": request["body"],
        },
        ensure_ascii=False,
    )
    text = text.replace(str(root), "/home/user/project-root").replace(FAKE_KEY, SANITIZED_KEY)
    return json.loads(text)


def _version() -> str:
    out = subprocess.run([CODEX, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    return out.split()[-1] if out else "?"


def shape(capture: dict) -> dict:
    """What must not drift: header names, body keys, tool names and types, input item kinds and roles."""
    body = capture["body"]
    tools = list(body.get("tools") or [])
    for item in body["input"]:
        tools += item.get("tools") or []
    return {
        "headers": sorted(capture["headers"]),
        "body": sorted(body),
        "tools": sorted(_tool_names(tools)),
        "input": [(item.get("type"), item.get("role")) for item in body["input"]],
    }


def _tool_names(tools: list) -> list[str]:
    names = []
    for tool in tools:
        if tool.get("type") == "namespace":
            names += [f"{tool['name']}.{n}" for n in _tool_names(tool.get("tools") or [])]
        else:
            names.append(f"{tool.get('type')}:{tool.get('name', '')}")
    return names


def test_fixtures_still_match_what_codex_sends(fake_upstream, tmp_path):
    captured = record(fake_upstream, tmp_path)
    if os.environ.get("CODEX_RECORD_FIXTURES") == "1":
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for old in FIXTURES.glob("*.json"):
            old.unlink()
        for name, capture in captured.items():
            (FIXTURES / f"{name}.json").write_text(json.dumps(capture, indent=1, ensure_ascii=False) + "\n")
    committed = {path.stem: json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))}
    assert sorted(committed) == sorted(captured)
    for name, capture in captured.items():
        assert shape(committed[name]) == shape(capture), f"{name}: Codex's requests changed (CODEX_RECORD_FIXTURES=1)"
        assert SANITIZED_KEY in committed[name]["headers"]["authorization"]
        assert not re.search(r"gh_[A-Za-z0-9]{20,}", json.dumps(committed[name]))  # no gateway key


def test_the_recorded_session_still_matches_what_codex_sends():
    """tests/fixtures/sessions/codex-recorded.json (replayed by `python -m bench.replay_savings`) is recorded again
    with the installed CLI: the same requests, item kinds and tools, the multi-step turns scripted by the fake's
    THEN lines (tests/fakes/upstream/steps.py) included, and apply_patch really edited the file (record asserts it)."""
    from tests.fixtures.sessions import record_codex

    committed = record_codex.expand(json.loads((record_codex.HERE / "codex-recorded.json").read_text()))
    fresh = record_codex.record(CODEX)

    def kinds(body):
        items = body["input"]
        calls = [item.get("name") for item in items if item.get("type") in ("function_call", "custom_tool_call")]
        return [(item.get("type"), item.get("role")) for item in items], calls, _tool_names(body["tools"])

    assert [kinds(body) for body in fresh] == [kinds(body) for body in committed], "re-record: record_codex.py"
    assert not re.search(r"/tmp/|codex-session\.", json.dumps(committed))  # the temporary directory is sanitized

