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
    pytest.skip("the Claude Code CLI is not installed (npm install -g @anthropic-ai/claude-code)", allow_module_level=True)

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


def claude(world, home: Path, mode: str, model: str, prompt: str, key: str | None = None, extra=None):
    """One `claude -p` run in `mode`; returns the finished process."""
    key = key or world.keys["alpha"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "AWS_", "CLOUD_ML"))}
    env.update(OFFLINE, HOME=str(home), ANTHROPIC_MODEL=model, **MODES[mode][0], **(extra or {}))
    if mode == "plain":
        env.update(ANTHROPIC_BASE_URL=world.url, ANTHROPIC_API_KEY=key)
    elif mode == "bedrock":
        env.update(ANTHROPIC_BEDROCK_BASE_URL=f"{world.url}/bedrock", AWS_BEARER_TOKEN_BEDROCK=key)
    else:
        env.update(ANTHROPIC_VERTEX_BASE_URL=f"{world.url}/vertex/v1", ANTHROPIC_CUSTOM_HEADERS=f"x-api-key: {key}")
    work = home / "work"
    work.mkdir(parents=True, exist_ok=True)
    return subprocess.run([CLAUDE, "-p", prompt], cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def _model(mode: str, upstream: str) -> str:
    return MODES[mode][1] if upstream == "openai" else "gw-anthropic"


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("mode", MODES)
def test_a_session_through_each_transport(world, tmp_path, ledger, mode, upstream):
    world.fake.state.reset()
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
    row = ledger(asked[-1]["headers"]["x-gateway-request-id"]) if "x-gateway-request-id" in asked[-1]["headers"] else None
    _ = row


def test_session_id_reaches_the_ledger(world, tmp_path, ledger):
    """X-Claude-Code-Session-Id is consumed for attribution: every row of a session carries it."""
    from usage.models import UsageRecord

    world.fake.state.reset()
    done = claude(world, tmp_path, "bedrock", "gw-anthropic", "SAY: attributed")
    assert done.returncode == 0, done.stdout + done.stderr
    session = world.upstream_requests()[-1]["headers"]["x-claude-code-session-id"]
    rows = ledger_rows(lambda: UsageRecord.objects.filter(session_id=session), ledger)
    assert rows and {r.ingress_api for r in rows} == {"bedrock"}


def ledger_rows(query, ledger):
    import time

    for _ in range(50):
        rows = list(query())
        if rows:
            return rows
        time.sleep(0.1)
    return []
