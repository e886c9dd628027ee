"""The real Claude Code CLI (npm @anthropic-ai/claude-code, the version .ci/run installs) through each transport
Claude Code's gateway contract names (README "Claude Code"): plain with model discovery, Bedrock mode and Vertex
mode, each to both upstream kinds (a Claude model id routes through the world's `claude-*` to the
OpenAI-compatible fake; `gw-anthropic` to the Anthropic fake, a pass-through). `claude -p` runs non-interactively,
offline (no telemetry, no auto-update), with its own HOME, bounded by a timeout. The CI installs the CLI: there
this module must not skip.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CLAUDE = shutil.which("claude")
if CLAUDE is None:
    if os.environ.get("CI"):
        raise RuntimeError("the Claude Code CLI is missing: .ci/run installs it with npm")
    pytest.skip("the Claude Code CLI is not installed (npm install -g @anthropic-ai/claude-code)",
                allow_module_level=True)

OFFLINE = {"DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
           "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1"}  # fmt: skip
# mode -> (env, the model id Claude Code sends for a Claude model in that mode)
MODES = {
    "plain": ({"CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"}, "claude-sonnet-4-5-20250929"),
    "bedrock": ({"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "us-east-1"},
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    "vertex": ({"CLAUDE_CODE_USE_VERTEX": "1", "CLOUD_ML_REGION": "us-east5", "ANTHROPIC_VERTEX_PROJECT_ID": "proj",
                "CLAUDE_CODE_SKIP_VERTEX_AUTH": "1"}, "claude-sonnet-4-5@20250929"),
}  # fmt: skip
UPSTREAMS = {"openai": "fake-gpt", "anthropic": "fake-claude"}


def claude(world, home: Path, mode: str, model: str, prompt: str, resume: bool = False, skip_auth: bool = False,
           args=()):
    """One `claude -p` run in `mode`; returns the finished process. `skip_auth`: Bedrock mode without AWS auth, the
    key in ANTHROPIC_CUSTOM_HEADERS (what Vertex mode always does here)."""
    key = world.keys["alpha"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "AWS_", "CLOUD_ML"))}
    env.update(OFFLINE, HOME=str(home), ANTHROPIC_MODEL=model, **MODES[mode][0])
    if mode == "plain":
        env.update(ANTHROPIC_BASE_URL=world.url, ANTHROPIC_API_KEY=key)
    elif mode == "bedrock" and skip_auth:
        env.update(ANTHROPIC_BEDROCK_BASE_URL=f"{world.url}/bedrock", CLAUDE_CODE_SKIP_BEDROCK_AUTH="1",
                   ANTHROPIC_CUSTOM_HEADERS=f"x-api-key: {key}")  # fmt: skip
    elif mode == "bedrock":
        env.update(ANTHROPIC_BEDROCK_BASE_URL=f"{world.url}/bedrock", AWS_BEARER_TOKEN_BEDROCK=key)
    else:
        env.update(ANTHROPIC_VERTEX_BASE_URL=f"{world.url}/vertex/v1", ANTHROPIC_CUSTOM_HEADERS=f"x-api-key: {key}")
    work = home / "work"
    work.mkdir(parents=True, exist_ok=True)
    argv = [CLAUDE, *(["--continue"] if resume else []), *args, "-p", prompt]
    return subprocess.run(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def _model(mode: str, upstream: str) -> str:
    return MODES[mode][1] if upstream == "openai" else "gw-anthropic"


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("mode", MODES)
def test_a_session_through_each_transport(world, tmp_path, mode, upstream, django_db_blocker):
    world.fake.state.reset()
    started = _now()
    done = claude(world, tmp_path, mode, _model(mode, upstream), f"SAY: hello from {mode}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"hello from {mode}"
    chats = [r for r in world.upstream_requests() if r["path"] in ("/v1/messages", "/v1/chat/completions")]
    asked = [r for r in chats if f"SAY: hello from {mode}" in json.dumps(r["body"])]
    assert asked and {r["body"]["model"] for r in asked} == {UPSTREAMS[upstream]}
    body = asked[-1]["body"]
    assert "anthropic_version" not in body and "anthropic_beta" not in body  # the envelope stayed at the gateway
    if upstream == "anthropic":
        assert "claude-code-20250219" in asked[-1]["headers"]["anthropic-beta"]  # forwarded unchanged (contract)
    rows = _rows_since(django_db_blocker, started)
    assert rows and {r.ingress_api for r in rows} == {"anthropic" if mode == "plain" else mode}
    assert all(r.outcome == "ok" for r in rows) and any(r.session_id for r in rows)


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("mode", ["bedrock", "vertex"])
def test_a_tool_runs_and_its_result_goes_back(world, tmp_path, mode, upstream):
    """An agent turn in the cloud modes: the model's Bash call comes back to Claude Code (in event-stream frames
    in Bedrock mode), Claude Code runs it, and the command's output goes back to the model."""
    world.fake.state.reset()
    command = {"command": "echo cloud-was-here > proof.txt && cat proof.txt", "description": "Write the proof"}
    done = claude(world, tmp_path, mode, _model(mode, upstream), f"USE_TOOL: Bash {json.dumps(command)}",
                  args=("--allowedTools", "Bash"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "work" / "proof.txt").read_text() == "cloud-was-here\n"
    last = world.upstream_requests()[-1]
    assert "cloud-was-here" in json.dumps(last["body"]["messages"][-1])  # the tool's output, back to the model
    assert last["body"]["model"] == UPSTREAMS[upstream]


def test_bedrock_mode_without_aws_auth(world, tmp_path):
    """CLAUDE_CODE_SKIP_BEDROCK_AUTH=1 with the key in ANTHROPIC_CUSTOM_HEADERS: the AWS SDK's inference-profile
    list comes without a key (an empty list, not a 401 counted as an auth failure), the conversation with it."""
    from .test_metrics import scrape, value

    missing = value(scrape(world.url), "gateway_auth_failures_total", reason="missing")
    done = claude(world, tmp_path, "bedrock", "gw-anthropic", "SAY: no aws auth", skip_auth=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "no aws auth"
    assert value(scrape(world.url), "gateway_auth_failures_total", reason="missing") == missing


def test_session_id_reaches_the_ledger(world, tmp_path, django_db_blocker):
    """X-Claude-Code-Session-Id is consumed for attribution: every request of a run carries the session's id on
    its ledger row, a `--continue` run the same one, another session another one."""
    sessions = []
    for home, resume in ((tmp_path / "a", False), (tmp_path / "a", True), (tmp_path / "b", False)):
        started = _now()
        done = claude(world, home, "bedrock", "gw-anthropic", "SAY: attributed", resume=resume)
        assert done.returncode == 0, done.stdout + done.stderr
        # Bedrock mode's availability probes at start carry no session id: their rows are left out
        sessions.append({r.session_id for r in _rows_since(django_db_blocker, started)} - {""})
    assert len(sessions[0]) == 1 and len(next(iter(sessions[0]))) == 36  # one UUID for all the run's requests
    assert sessions[1] == sessions[0] and sessions[2].isdisjoint(sessions[0])


def test_model_discovery_lists_the_routes_under_claude_style_ids(world, tmp_path, claude_price):
    """CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1: Claude Code keeps the gateway's GET /v1/models entries whose
    ids start with claude/anthropic (its /model picker). The world's aliases are named otherwise, so they are
    listed as anthropic/<alias> with their display names, and that id routes like the alias; the `claude-*`
    pattern route shows as the priced Claude model it serves."""
    world.fake.state.reset()
    done = claude(world, tmp_path, "plain", "anthropic/gw-anthropic", "SAY: picked from the list")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "picked from the list"
    cached = json.loads((tmp_path / ".claude" / "cache" / "gateway-models.json").read_text())
    listed = {m["id"]: m["display_name"] for m in cached["models"]}
    assert listed["anthropic/gw-anthropic"] == "Fake Claude" and listed["anthropic/gw-openai"] == "Fake GPT"
    assert listed[claude_price] == "Claude Sonnet 4.5"
    asked = [r for r in world.upstream_requests() if "picked from the list" in json.dumps(r["body"])]
    assert asked and {(r["path"], r["body"]["model"]) for r in asked} == {("/v1/messages", "fake-claude")}


def test_an_unknown_model_in_bedrock_mode(world, tmp_path):
    """A Bedrock model id no route serves: a 404 that Claude Code reports as a model problem (not a crash)."""
    done = claude(world, tmp_path, "bedrock", "us.anthropic.no-such-model-v1:0", "SAY: hi")
    assert done.returncode == 1
    assert "issue with the selected model (us.anthropic.no-such-model-v1:0)" in done.stdout


def _now():
    from django.utils import timezone

    return timezone.now()


def _rows_since(django_db_blocker, started, timeout: float = 5.0) -> list:
    """The ledger rows of the requests made since `started` (the writer is asynchronous: poll briefly)."""
    import time

    from usage.models import UsageRecord

    deadline = time.monotonic() + timeout
    with django_db_blocker.unblock():
        while time.monotonic() < deadline:
            rows = list(UsageRecord.objects.filter(created_at__gte=started).order_by("created_at"))
            if any(r.session_id for r in rows):  # the conversation's rows (the probes' may come first)
                return rows
            time.sleep(0.1)
    return []

